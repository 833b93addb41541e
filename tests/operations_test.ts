/**
 * What an operator sees of an executor: `GET /metrics` (Prometheus text,
 * bearer token required, no argv, env or paths in it) and the graceful drain
 * on SIGTERM (`--drain-timeout-ms`), against a real `serve` subprocess.
 */

import assert from "node:assert/strict";
import { startExecutor, TEST_TOKEN } from "./support/executor_process.ts";
import { isRunning, waitGone } from "./support/processes.ts";
import { type Message, RawClient } from "./support/raw_client.ts";
import { ENV } from "./support/backends.ts";

function httpUrl(wsUrl: string, path: string): string {
  return wsUrl.replace(/^ws/, "http").replace(/\/?$/, path);
}

async function get(
  wsUrl: string,
  path: string,
  token?: string,
): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(httpUrl(wsUrl, path), {
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    text: await response.text(),
    type: response.headers.get("content-type"),
  };
}

/** `name value` lines of an exposition, by name (labels included). */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = line.match(/^([a-z_]+(?:\{le="[^"]+"\})?) (-?[0-9.e+]+)$/);
    assert.ok(match, `not an exposition line: ${JSON.stringify(line)}`);
    values.set(match[1], Number(match[2]));
  }
  return values;
}

/** Resumes a session; until the executor has seen its connection close (-32010), again. */
async function resume(url: string, sessionId: string): Promise<RawClient> {
  while (true) {
    try {
      return await RawClient.initialized(url, sessionId);
    } catch (error) {
      if (!/already attached/.test((error as Error).message)) throw error;
    }
  }
}

function start(client: RawClient, processId: string, argv: string[], extra = {}) {
  return client.request("process/start", {
    processId,
    argv,
    cwd: "/tmp",
    env: ENV,
    tty: false,
    ...extra,
  });
}

function closed(client: RawClient, processId: string): Promise<Message> {
  return client.waitNotification((m) =>
    m.method === "process/closed" && m.params.processId === processId
  );
}

Deno.test("GET /metrics: Prometheus text with the bearer token (401 without), counting starts, failures, bytes and sessions, and nothing of argv, env or paths", async () => {
  const executor = await startExecutor([]);
  try {
    assert.equal((await get(executor.url, "/metrics")).status, 401);
    assert.equal((await get(executor.url, "/metrics", "wrong")).status, 401);
    const empty = await get(executor.url, "/metrics", TEST_TOKEN);
    assert.equal(empty.status, 200);
    assert.match(empty.type ?? "", /^text\/plain; version=0\.0\.4/);
    assert.equal(samples(empty.text).get("execbridge_process_starts_total"), 0);

    const client = await RawClient.initialized(executor.url);
    const marker = "SECRET_ARGV_MARKER";
    assert.ok(
      (await start(client, "echo", ["sh", "-c", `read x; echo "$x ${marker} $SECRET_ENV"`], {
        pipeStdin: true,
        env: { ...ENV, SECRET_ENV: "SECRET_ENV_VALUE" },
      })).result,
    );
    await client.request("process/write", {
      processId: "echo",
      chunk: btoa("hello\n"),
      writeId: "w1",
    });
    await closed(client, "echo");
    const failed = await start(client, "missing", ["/no/such/program-SECRET_PATH"]);
    assert.equal(failed.error.code, -32603);
    await start(client, "sleeper", ["sleep", "30"]);

    const scraped = await get(executor.url, "/metrics", TEST_TOKEN);
    const values = samples(scraped.text);
    assert.equal(values.get("execbridge_process_starts_total"), 2);
    assert.equal(values.get("execbridge_process_start_failures_total"), 1);
    assert.equal(values.get("execbridge_processes_live"), 1);
    assert.equal(values.get("execbridge_sessions_live"), 1);
    assert.equal(values.get("execbridge_sessions_detached"), 0);
    assert.equal(values.get("execbridge_connections_live"), 1);
    assert.equal(values.get("execbridge_process_stdin_bytes_total"), 6);
    assert.equal(
      values.get("execbridge_process_output_bytes_total"),
      `hello ${marker} SECRET_ENV_VALUE\n`.length,
    );
    assert.equal(values.get("execbridge_process_start_duration_seconds_count"), 2);
    assert.equal(values.get('execbridge_process_start_duration_seconds_bucket{le="+Inf"}'), 2);
    assert.ok((values.get("execbridge_workers_idle") ?? -1) >= 0);
    for (const secret of [marker, "SECRET_ENV", "SECRET_PATH", "/tmp", "sleep"]) {
      assert.ok(!scraped.text.includes(secret), `${secret} in /metrics`);
    }
    // Every metric is documented and typed, with Prometheus names.
    for (
      const name of new Set(
        [...values.keys()].map((k) => k.replace(/(_bucket\{.*|_sum|_count)$/, "")),
      )
    ) {
      assert.match(name, /^execbridge_[a-z_]+$/);
      assert.match(scraped.text, new RegExp(`^# HELP ${name} `, "m"));
      assert.match(scraped.text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, "m"));
    }

    // A session detached, then resumed.
    await client.close();
    const resumed = await resume(executor.url, client.sessionId);
    const after = samples((await get(executor.url, "/metrics", TEST_TOKEN)).text);
    assert.equal(after.get("execbridge_session_resumes_total"), 1);
    assert.equal(after.get("execbridge_connections_total"), 2);
    await resumed.request("process/terminate", { processId: "sleeper" });
    await resumed.close();
  } finally {
    await executor.stop();
  }
});

Deno.test("drain: on SIGTERM /readyz is 503 at once, new sessions and processes are refused, resumes accepted, a running process finishes and its output arrives; then the executor exits 0", async () => {
  const executor = await startExecutor(["--drain-timeout-ms", "30000", "--log-level", "info"]);
  try {
    assert.equal((await get(executor.url, "/readyz")).status, 200);
    const client = await RawClient.initialized(executor.url);
    await start(client, "job", ["sh", "-c", "read x; echo finished $x"], { pipeStdin: true });
    const other = await RawClient.initialized(executor.url);
    await other.close();
    await executor.waitForStderr(/session \S+ detached/);

    Deno.kill(executor.pid, "SIGTERM");
    await executor.waitForStderr(/draining: no new sessions or processes; waiting up to 30000 ms/);
    assert.deepEqual(
      [(await get(executor.url, "/readyz")).status, (await get(executor.url, "/healthz")).status],
      [503, 200],
    );
    const late = await RawClient.connect(executor.url);
    const refused = await late.request("initialize", { clientName: "late" });
    assert.equal(refused.error.code, -32600);
    assert.match(refused.error.message, /draining/);
    const resume = await late.request("initialize", {
      clientName: "late",
      resumeSessionId: other.sessionId,
    });
    assert.equal(resume.result.sessionId, other.sessionId, "a resume is still accepted");
    await late.close();
    const noMore = await start(client, "another", ["true"]);
    assert.match(noMore.error.message, /draining/);

    // The running process finishes in its own time, its output delivered.
    await client.request("process/write", { processId: "job", chunk: btoa("ok\n"), writeId: "1" });
    const output = await client.waitNotification((m) => m.method === "process/output");
    assert.equal(atob(output.params.chunk), "finished ok\n");
    await closed(client, "job");
    const status = await executor.status;
    assert.equal(status.code, 0);
    await client.close();
  } finally {
    await executor.stop();
  }
});

Deno.test("drain: processes still running when the drain timeout ends are killed, grandchildren included; the executor exits 0", async () => {
  const executor = await startExecutor(["--drain-timeout-ms", "300", "--log-level", "info"]);
  try {
    const client = await RawClient.initialized(executor.url);
    await start(client, "tree", ["sh", "-c", "sleep 300 & echo $!; wait"]);
    const output = await client.waitNotification((m) => m.method === "process/output");
    const grandchild = Number(atob(output.params.chunk));
    assert.ok(isRunning(grandchild));
    const began = performance.now();
    Deno.kill(executor.pid, "SIGTERM");
    const status = await executor.status;
    assert.equal(status.code, 0);
    assert.ok(performance.now() - began >= 300, "it did not wait for the drain timeout");
    assert.ok(await waitGone(grandchild), "the grandchild outlived the executor");
    await client.close();
  } finally {
    await executor.stop();
  }
});
