/**
 * MCP server respawn: a stdio server that exits unexpectedly is started
 * again and the MCP client keeps its session — through `bridge` (a real
 * `serve` subprocess behind it, driven over stdin/stdout and by the SDK
 * client in another process) and through McpConnectionManager in both
 * placements. The fixture's `crash` tool exits (or kills itself) mid-call,
 * `session` says which process answers and what handshake it saw, `counter`
 * is state that a new process does not have.
 */

import assert from "node:assert/strict";
import { silentLogger } from "../src/log/logger.ts";
import { parseMcpConfig } from "../src/mcp/config.ts";
import { McpConnectionManager, type McpServerStatus } from "../src/mcp/connection_manager.ts";
import {
  call,
  handshake,
  type Message,
  resultText,
  startBridge,
} from "./support/bridge_process.ts";
import { denoRun, fixtureServer, runCli } from "./support/cli.ts";
import { startExecutor } from "./support/executor_process.ts";
import { waitGone } from "./support/processes.ts";

const STATELESS_SERVER = new URL("./fixtures/stateless_mcp_server.ts", import.meta.url).pathname;
const RESPAWN_CLIENT = new URL("./fixtures/respawn_client_process.ts", import.meta.url).pathname;

/** Generous: the error comes at the crash, not after the restart (< 1 s when not loaded). */
const CRASH_ERROR_BOUND_MS = 5000;

/** A path in a fresh temp dir (not created), removed with the dir by `fn`'s end. */
async function withTempPath(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_respawn_" });
  try {
    await fn(`${dir}/file`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ids(messages: Message[]): unknown[] {
  return messages.map((m) => m.id).filter((id) => id !== undefined);
}

// ---------------------------------------------------------------------------
// bridge

Deno.test("bridge respawn: a crash mid-call fails that call; the next runs on a new server in the same session", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url);
    await handshake(bridge);
    await bridge.send({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    assert.ok((await bridge.response(2)).result.tools.length > 0);
    await bridge.send(call(3, "counter"));
    assert.equal(resultText(await bridge.response(3)), "1");
    await bridge.send(call(4, "session"));
    const first = JSON.parse(resultText(await bridge.response(4)));

    const sent = performance.now();
    await bridge.send(call(5, "crash", { code: 3 }));
    const crashed = await bridge.response(5);
    assert.ok(performance.now() - sent < CRASH_ERROR_BOUND_MS);
    assert.match(
      crashed.error.message,
      /^MCP server \S+ exited \(code 3\) while this request was in flight; restarting \(1 of 5\)$/,
    );

    await bridge.send(call(6, "session"));
    const second = JSON.parse(resultText(await bridge.response(6)));
    assert.notEqual(second.pid, first.pid);
    // The bridge replayed the client's handshake: one initialize, with the client's params.
    assert.deepEqual(
      [second.initializeRequests, second.initializedNotifications, second.clientName],
      [1, 1, "t"],
    );
    assert.equal(second.protocolVersion, "2025-06-18");
    await bridge.send(call(7, "counter"));
    assert.equal(resultText(await bridge.response(7)), "1", "a new process has a new counter");

    // The client saw its own ids only, one initialize answer, and no tools/list_changed.
    assert.deepEqual(ids(bridge.seen), [1, 2, 3, 4, 5, 6, 7]);
    assert.ok(!bridge.seen.some((m) => m.method === "notifications/tools/list_changed"));
    const { code, stderr } = await bridge.finish();
    assert.equal(code, 0, stderr);
    assert.match(stderr, /MCP server \S+ exited \(code 3\), restarting \(1 of 5\)/);
    assert.match(stderr, /replayed the client's initialize handshake/);
    assert.ok(await waitGone(second.pid), "the new server outlived the bridge");
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge respawn: a kill fails every request in flight; requests sent while it restarts wait for the new server", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url);
    await handshake(bridge);
    await bridge.send(call(2, "session"));
    const first = JSON.parse(resultText(await bridge.response(2)));
    await bridge.send(call(3, "slow", { ms: 60_000, label: "never" }));
    await bridge.send(call(4, "crash", { signal: "SIGKILL" }));
    for (const id of [3, 4]) {
      assert.match(
        (await bridge.response(id)).error.message,
        /exited \(signal SIGKILL\) while this request was in flight; restarting \(1 of 5\)/,
      );
    }
    // Sent at once: the new server is not up yet, so these are held, then delivered in order.
    await bridge.send(call(5, "session"));
    await bridge.send(call(6, "echo", { message: "after" }));
    const second = JSON.parse(resultText(await bridge.response(5)));
    assert.notEqual(second.pid, first.pid);
    assert.equal(second.initializeRequests, 1);
    assert.equal(resultText(await bridge.response(6)), "ECHOING: after");
    const { code, stderr } = await bridge.finish();
    assert.equal(code, 0, stderr);
    assert.match(stderr, /exited \(signal SIGKILL\), restarting \(1 of 5\)/);
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge respawn: a new server with other tools is announced with tools/list_changed", async () => {
  await withTempPath(async (toolsFile) => {
    const executor = await startExecutor([]);
    try {
      const bridge = startBridge(executor.url, {
        serverFlags: ["--extra-tools-file", toolsFile],
      });
      await handshake(bridge);
      await bridge.send({ jsonrpc: "2.0", id: 2, method: "tools/list" });
      const before = (await bridge.response(2)).result.tools.map((t: { name: string }) => t.name);
      assert.ok(!before.includes("added"));
      await Deno.writeTextFile(toolsFile, "added\n");
      await bridge.send(call(3, "crash"));
      assert.match((await bridge.response(3)).error.message, /exited \(code 3\)/);
      await bridge.send(call(4, "echo", { message: "x" }));
      await bridge.response(4);
      const changed = bridge.seen.findIndex((m) => m.method === "notifications/tools/list_changed");
      assert.ok(changed !== -1, "no tools/list_changed");
      assert.ok(changed < bridge.seen.findIndex((m) => m.id === 4), "announced after the call");
      await bridge.send({ jsonrpc: "2.0", id: 5, method: "tools/list" });
      const after = (await bridge.response(5)).result.tools.map((t: { name: string }) => t.name);
      assert.ok(after.includes("added"));
      const { code, stderr } = await bridge.finish();
      assert.equal(code, 0, stderr);
    } finally {
      await executor.stop();
    }
  });
});

Deno.test("bridge respawn: a crash loop gives up after --max-restarts, naming the server, the restarts and the last exit", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, {
      serverFlags: ["--exit-after-ms", "0"],
      bridgeFlags: ["--max-restarts", "2"],
    });
    const { code, stdout, stderr } = await bridge.finish(true);
    assert.equal(code, 3, stderr);
    assert.equal(stdout, "");
    assert.match(stderr, /exited \(code 3\), restarting \(1 of 2\)/);
    assert.match(stderr, /exited \(code 3\), restarting \(2 of 2\)/);
    assert.match(
      stderr,
      /error: MCP server \S+ exited \(code 3\) after 2 restarts within 60 s; giving up/,
    );
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge --no-respawn: a crash mid-call ends the bridge with the server's code, as before", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, { bridgeFlags: ["--no-respawn"] });
    await handshake(bridge);
    await bridge.send(call(2, "crash", { code: 5 }));
    const { code, stdout, stderr } = await bridge.finish(true);
    assert.equal(code, 5, stderr);
    assert.ok(!stdout.includes('"id":2'), "nothing answers the call that crashed");
    assert.match(stderr, /exited \(code 5\)/);
    assert.doesNotMatch(stderr, /restarting/);
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge: --max-restarts must be a positive integer, and not with --no-respawn", async () => {
  for (const value of ["abc", "0", "-1", "2.5", ""]) {
    const output = await runCli(["bridge", "--max-restarts", value, "--", "true"]);
    assert.equal(output.code, 1);
    assert.match(
      output.stderr,
      new RegExp(
        `--max-restarts must be a positive integer \\(restarts within 60 s before giving up\\), ` +
          `got "${value}"; pass --no-respawn to turn restarting off`,
      ),
    );
  }
  const both = await runCli(["bridge", "--no-respawn", "--max-restarts", "3", "--", "true"]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /--max-restarts has no effect with --no-respawn; drop one of them/);
});

Deno.test("bridge respawn: the SDK client in another process keeps its session across a kill", async () => {
  await withTempPath(async (toolsFile) => {
    const executor = await startExecutor([]);
    try {
      const output = await new Deno.Command(Deno.execPath(), {
        args: denoRun(
          RESPAWN_CLIENT,
          "--crash",
          "signal",
          "--extra-tools-file",
          toolsFile,
          "--",
          Deno.execPath(),
          ...denoRun(
            new URL("../mod.ts", import.meta.url).pathname,
            "bridge",
            "--executor",
            executor.url,
            "--log-level",
            "warn",
            "--",
            ...[fixtureServer("--extra-tools-file", toolsFile)].flatMap((f) => [
              f.command,
              ...f.args,
            ]),
          ),
        ),
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, stderr);
      const report = JSON.parse(new TextDecoder().decode(output.stdout));
      assert.equal(report.connects, 1);
      assert.deepEqual(report.before.counter, ["1", "2"]);
      assert.match(
        report.crashError,
        /exited \(signal SIGKILL\) while this request was in flight; restarting \(1 of 5\)/,
      );
      assert.ok(report.crashErrorMs < CRASH_ERROR_BOUND_MS, `${report.crashErrorMs} ms`);
      assert.notEqual(report.after.session.pid, report.before.session.pid);
      // The new process saw one initialize, the client's own, replayed by the bridge.
      assert.equal(report.after.session.initializeRequests, 1);
      assert.equal(report.after.session.clientName, "respawn-client");
      assert.equal(report.after.session.protocolVersion, report.before.session.protocolVersion);
      assert.equal(report.after.counter, "1");
      assert.equal(report.listChanged, 1);
      assert.ok(!report.before.tools.includes("added"));
      assert.ok(report.after.tools.includes("added"));
      assert.match(stderr, /exited \(signal SIGKILL\), restarting \(1 of 5\)/);
    } finally {
      await executor.stop();
    }
  });
});

Deno.test("bridge respawn: a 2026-07-28 server (no initialize) is restarted without a replay", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, {
      server: { command: Deno.execPath(), args: denoRun(STATELESS_SERVER) },
    });
    const _meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {},
    };
    const request = (id: number, method: string, params: Record<string, unknown> = {}) => ({
      jsonrpc: "2.0",
      id,
      method,
      params: { ...params, _meta },
    });
    await bridge.send(request(1, "server/discover"));
    assert.equal((await bridge.response(1)).result.serverInfo.name, "stateless-fixture");
    await bridge.send(request(2, "tools/list"));
    assert.equal((await bridge.response(2)).result.tools.length, 2);
    await bridge.send(request(3, "tools/call", { name: "pid" }));
    const first = JSON.parse(resultText(await bridge.response(3)));
    await bridge.send(request(4, "tools/call", { name: "crash" }));
    assert.match(
      (await bridge.response(4)).error.message,
      /exited \(code 3\) while this request was in flight; restarting \(1 of 5\)/,
    );
    await bridge.send(request(5, "tools/call", { name: "pid" }));
    const second = JSON.parse(resultText(await bridge.response(5)));
    assert.notEqual(second.pid, first.pid);
    assert.equal(second.initializeRequests, 0, "an initialize was replayed to it");
    assert.deepEqual(ids(bridge.seen), [1, 2, 3, 4, 5]);
    const { code, stderr } = await bridge.finish();
    assert.equal(code, 0, stderr);
    assert.match(stderr, /no handshake to replay/);
  } finally {
    await executor.stop();
  }
});

// ---------------------------------------------------------------------------
// McpConnectionManager

function config(servers: Record<string, unknown>) {
  return parseMcpConfig(JSON.stringify({ mcpServers: servers }), {
    format: "json",
    source: "respawn.json",
  });
}

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return content.filter((c) => c.type === "text").map((c) => c.text).join("");
}

/** Collects statuses and resolves `until(state)` once a server reached that state. */
function statusLog() {
  const seen: McpServerStatus[] = [];
  const waiters: { state: string; resolve: (s: McpServerStatus) => void }[] = [];
  return {
    seen,
    onStatus(status: McpServerStatus) {
      seen.push(status);
      for (const waiter of waiters.filter((w) => w.state === status.state)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(status);
      }
    },
    until(state: string): Promise<McpServerStatus> {
      return new Promise((resolve) => waiters.push({ state, resolve }));
    },
  };
}

for (const environment of ["local", "remote"] as const) {
  Deno.test(`manager ${environment} respawn: the call in flight fails naming the exit; the next runs on a new process; tools refreshed`, async () => {
    await withTempPath(async (toolsFile) => {
      const executor = environment === "remote" ? await startExecutor([]) : null;
      const statuses = statusLog();
      const manager = await McpConnectionManager.start(
        config({
          srv: { ...fixtureServer("--extra-tools-file", toolsFile), environment },
        }),
        {
          executor: executor ? { url: executor.url } : null,
          log: silentLogger,
          onStatus: statuses.onStatus,
          graceMs: 300,
        },
      );
      try {
        assert.equal(textOf(await manager.callTool("srv__counter")), "1");
        const first = JSON.parse(textOf(await manager.callTool("srv__session")));
        assert.ok(!manager.listTools().some((t) => t.name === "srv__added"));
        await Deno.writeTextFile(toolsFile, "added\n");

        const sent = performance.now();
        await assert.rejects(
          manager.callTool("srv__crash", { code: 3 }),
          /MCP server srv exited \(code 3\) while this request was in flight; restarting \(1 of 5\)/,
        );
        assert.ok(performance.now() - sent < CRASH_ERROR_BOUND_MS);
        const second = JSON.parse(textOf(await manager.callTool("srv__session")));
        assert.notEqual(second.pid, first.pid);
        assert.deepEqual(
          [second.initializeRequests, second.initializedNotifications, second.clientName],
          [1, 1, "execbridge"],
        );
        assert.equal(textOf(await manager.callTool("srv__counter")), "1");
        assert.equal(textOf(await manager.callTool("srv__added")), "added");

        const [status] = manager.status();
        assert.equal(status.state, "ready");
        assert.equal(status.restarts, 1);
        assert.equal(status.lastExit, "exited (code 3)");
        assert.ok(statuses.seen.some((s) => s.state === "restarting"));
      } finally {
        await manager.close();
        await executor?.stop();
      }
    });
  });

  Deno.test(`manager ${environment} respawn: a crash loop gives up after max_restarts; the server is failed`, async () => {
    await withTempPath(async (marker) => {
      const executor = environment === "remote" ? await startExecutor([]) : null;
      const statuses = statusLog();
      const manager = await McpConnectionManager.start(
        config({
          loop: {
            ...fixtureServer("--crash-at-start-if", marker),
            environment,
            max_restarts: 2,
          },
        }),
        {
          executor: executor ? { url: executor.url } : null,
          log: silentLogger,
          onStatus: statuses.onStatus,
          graceMs: 300,
        },
      );
      try {
        const failed = statuses.until("failed");
        await Deno.writeTextFile(marker, "");
        const crash = manager.callTool("loop__crash");
        const held = manager.callTool("loop__pid");
        await assert.rejects(crash, /exited \(code 3\) while this request was in flight/);
        await assert.rejects(held, /after 2 restarts within 60 s; not restarting it/);
        const status = await failed;
        assert.equal(status.restarts, 2);
        assert.equal(status.lastExit, "exited (code 3)");
        assert.match(
          status.error!,
          /^MCP server loop exited \(code 3\) after 2 restarts within 60 s; giving up/,
        );
        assert.equal(manager.listTools().length, 0);
      } finally {
        await manager.close();
        await executor?.stop();
      }
    });
  });
}

Deno.test("manager: respawn = false leaves a crashed server failed, as before", async () => {
  const statuses = statusLog();
  const manager = await McpConnectionManager.start(
    config({ once: { ...fixtureServer(), respawn: false } }),
    { log: silentLogger, onStatus: statuses.onStatus, graceMs: 300 },
  );
  try {
    const failed = statuses.until("failed");
    await assert.rejects(manager.callTool("once__crash"), /Connection closed/);
    const status = await failed;
    assert.equal(status.error, "the server exited");
    assert.equal(status.restarts, 0);
    assert.equal(status.lastExit, undefined);
  } finally {
    await manager.close();
  }
});

Deno.test("manager remote: an executor killed fails calls in flight at once; restarted on its address, the server runs again in a new session", async () => {
  const first = await startExecutor([]);
  const port = new URL(first.url).port;
  let second: Awaited<ReturnType<typeof startExecutor>> | null = null;
  const statuses = statusLog();
  const manager = await McpConnectionManager.start(
    config({ srv: { ...fixtureServer(), environment: "remote" } }),
    { executor: { url: first.url }, log: silentLogger, onStatus: statuses.onStatus, graceMs: 300 },
  );
  try {
    const before = JSON.parse(textOf(await manager.callTool("srv__session")));
    const slow = manager.callTool("srv__slow", { ms: 60_000, label: "never" });
    const killed = performance.now();
    await first.stop("SIGKILL");
    await assert.rejects(slow, /MCP server srv can no longer be reached: .*started again once/);
    assert.ok(performance.now() - killed < CRASH_ERROR_BOUND_MS);

    const ready = statuses.until("ready");
    second = await startExecutor(["--listen", `ws://127.0.0.1:${port}`]);
    await ready;
    const after = JSON.parse(textOf(await manager.callTool("srv__session")));
    assert.notEqual(after.pid, before.pid);
    assert.equal(textOf(await manager.callTool("srv__counter")), "1");
    // Waiting for its executor, the server was restarting, never failed.
    assert.ok(statuses.seen.some((s) => s.state === "restarting"));
    assert.ok(!statuses.seen.some((s) => s.state === "failed"), JSON.stringify(statuses.seen));
  } finally {
    await manager.close();
    await first.stop();
    await second?.stop();
  }
});

Deno.test("manager remote: the config's resume_window_sec bounds how long a gone executor is tried", async () => {
  const executor = await startExecutor([]);
  const statuses = statusLog();
  const manager = await McpConnectionManager.start(
    parseMcpConfig(
      JSON.stringify({
        executor: { url: executor.url, resume_window_sec: 1 },
        mcpServers: { srv: { ...fixtureServer(), environment: "remote" } },
      }),
      { format: "json", source: "window.json" },
    ),
    { log: silentLogger, onStatus: statuses.onStatus, graceMs: 300 },
  );
  try {
    assert.equal(textOf(await manager.callTool("srv__counter")), "1");
    const failed = statuses.until("failed");
    await executor.stop("SIGKILL");
    // Never back: past the window (1 s, not the default 30) the server fails, saying so.
    const status = await failed;
    assert.match(status.error ?? "", /the resume window is 1\.0 s/);
  } finally {
    await manager.close();
    await executor.stop();
  }
});
