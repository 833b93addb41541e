/**
 * Traces and metrics through Deno's built-in OpenTelemetry: a `serve`
 * subprocess (and an agent) with `OTEL_DENO=true` export to a small
 * OTLP/HTTP (JSON) receiver on loopback: a span per JSON-RPC request, one
 * per process lifetime, one per MCP tool call, the executor's counters and
 * gauges; no argv or argument reaches them.
 */

import assert from "node:assert/strict";
import { connectExecutor } from "../mod.ts";
import { startExecutor } from "./support/executor_process.ts";
import { denoRun, fixtureServer, MOD } from "./support/cli.ts";

const MOD_URL = new URL(`file://${MOD}`).href;
import { ENV } from "./support/backends.ts";

interface OtlpSpan {
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  status?: { code?: number };
}

/** An OTLP/HTTP receiver taking JSON trace and metric exports; `spans` and `metrics` grow as they come. */
function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  /** Metric name → the last value seen (sum or gauge, as a number). */
  const metrics = new Map<string, number>();
  const metricWaiters: { name: string; value: number; resolve: () => void }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.text();
    bodies.push(body);
    if (new URL(request.url).pathname === "/v1/metrics") {
      const parsed = JSON.parse(body);
      for (const resource of parsed.resourceMetrics ?? []) {
        for (const scope of resource.scopeMetrics ?? []) {
          for (const metric of scope.metrics ?? []) {
            const points = metric.sum?.dataPoints ?? metric.gauge?.dataPoints ?? [];
            const last = points.at(-1);
            if (last !== undefined) {
              metrics.set(metric.name, Number(last.asInt ?? last.asDouble ?? 0));
            }
          }
        }
      }
      for (const waiter of metricWaiters.splice(0)) {
        if (metrics.get(waiter.name) === waiter.value) waiter.resolve();
        else metricWaiters.push(waiter);
      }
    }
    if (new URL(request.url).pathname === "/v1/traces") {
      const parsed = JSON.parse(body);
      for (const resource of parsed.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans ?? []);
      }
    }
    return Response.json({});
  });
  /** Resolves once an export has carried `name` with `value` (exports come every 200 ms here). */
  const metricReaches = (name: string, value: number) =>
    metrics.get(name) === value
      ? Promise.resolve()
      : new Promise<void>((resolve) => metricWaiters.push({ name, value, resolve }));
  return {
    server,
    spans,
    bodies,
    metrics,
    metricReaches,
    url: `http://127.0.0.1:${server.addr.port}`,
  };
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
        OTEL_METRIC_EXPORT_INTERVAL: "200",
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
      // The /metrics gauges and counters go out as OpenTelemetry instruments too.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        receiver.metricReaches("execbridge_process_starts_total", 1),
        new Promise((_, reject) =>
          timer = setTimeout(
            () =>
              reject(new Error(`no metrics export within 20 s: ${[...receiver.metrics.keys()]}`)),
            20_000,
          )
        ),
      ]).finally(() => clearTimeout(timer));
      assert.ok(receiver.metrics.has("execbridge_processes_live"));
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

Deno.test("OpenTelemetry: an agent (McpConnectionManager) with OTEL_DENO=true exports a client span per MCP tool call", async () => {
  const receiver = otlpReceiver();
  const dir = await Deno.makeTempDir({ prefix: "execbridge_otel_" });
  try {
    const server = fixtureServer();
    const script = `${dir}/agent.ts`;
    await Deno.writeTextFile(
      script,
      `import { McpConnectionManager, parseMcpConfig } from ${JSON.stringify(MOD_URL)};
const config = parseMcpConfig(${
        JSON.stringify(JSON.stringify({ mcpServers: { srv: server } }))
      }, { format: "json" });
const manager = await McpConnectionManager.start(config, {});
await manager.callTool("srv__echo", { message: "ARGUMENT_MARKER" });
await manager.close();
`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: denoRun(script),
      env: {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "execbridge-agent-test",
      },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const span = receiver.spans.find((s) => s.name === "tools/call srv__echo");
    assert.ok(span, `no tool call span in ${receiver.spans.map((s) => s.name)}`);
    assert.equal(span.kind, 3, "a client span");
    assert.equal(attribute(span, "mcp.server"), "srv");
    assert.equal(attribute(span, "mcp.tool"), "echo");
    for (const body of receiver.bodies) assert.ok(!body.includes("ARGUMENT_MARKER"));
  } finally {
    await receiver.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
