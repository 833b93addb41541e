/**
 * Traces through Deno's built-in OpenTelemetry: a `serve` subprocess with
 * `OTEL_DENO=true` exports to a small OTLP/HTTP (JSON) receiver on loopback;
 * a span per JSON-RPC request and one per process lifetime arrive, and no
 * argv reaches them.
 */

import assert from "node:assert/strict";
import { connectExecutor } from "../mod.ts";
import { startExecutor } from "./support/executor_process.ts";
import { ENV } from "./support/backends.ts";

interface OtlpSpan {
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

/** An OTLP/HTTP receiver taking JSON trace exports; `spans` grows as they come. */
function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.text();
    bodies.push(body);
    if (new URL(request.url).pathname === "/v1/traces") {
      const parsed = JSON.parse(body);
      for (const resource of parsed.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans ?? []);
      }
    }
    return Response.json({});
  });
  return { server, spans, bodies, url: `http://127.0.0.1:${server.addr.port}` };
}

function attribute(span: OtlpSpan, key: string): unknown {
  const found = span.attributes?.find((a) => a.key === key)?.value;
  return found === undefined ? undefined : Object.values(found)[0];
}

Deno.test("OpenTelemetry: with OTEL_DENO=true the executor exports a span per request and one per process lifetime, without argv", async () => {
  const receiver = otlpReceiver();
  try {
    const executor = await startExecutor([], {
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "execbridge-test",
      },
    });
    try {
      const client = await connectExecutor(executor.url);
      const proc = await client.start({
        processId: "traced",
        argv: ["sh", "-c", "echo ARGV_MARKER; exit 3"],
        env: ENV,
      });
      assert.equal((await proc.wait()).exitCode, 3);
      await client.close();
    } finally {
      // Deno exports what is left when the executor exits.
      await executor.stop("SIGTERM");
    }
    const start = receiver.spans.find((s) => s.name === "process/start");
    assert.ok(start, `no process/start span in ${receiver.spans.map((s) => s.name)}`);
    assert.equal(attribute(start, "rpc.method"), "process/start");
    assert.equal(attribute(start, "rpc.system"), "jsonrpc");
    assert.equal(start.kind, 2, "a server span");
    const lifetime = receiver.spans.find((s) => s.name === "process");
    assert.ok(lifetime);
    assert.equal(attribute(lifetime, "execbridge.process.id"), "traced");
    assert.equal(Number(attribute(lifetime, "process.exit.code")), 3);
    assert.ok(receiver.spans.some((s) => s.name === "initialize"));
    for (const body of receiver.bodies) assert.ok(!body.includes("ARGV_MARKER"));
  } finally {
    await receiver.server.shutdown();
  }
});
