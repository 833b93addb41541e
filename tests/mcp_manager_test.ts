/**
 * McpConnectionManager with the fixture server in both placements (local
 * child, and a process on a real `serve` subprocess): status, tool names and
 * filters, routing, serial vs parallel calls, timeouts, required servers.
 */

import assert from "node:assert/strict";
import { parseMcpConfig } from "../src/mcp/config.ts";
import {
  McpConnectionManager,
  type McpServerStatus,
  RequiredServerError,
} from "../src/mcp/connection_manager.ts";
import { silentLogger } from "../src/log/logger.ts";
import { startExecutor } from "./support/executor_process.ts";
import { fixtureServer } from "./support/cli.ts";

function server(name: string, extra: Record<string, unknown> = {}, flags: string[] = []) {
  return {
    [name]: {
      ...fixtureServer(...flags),
      ...extra,
    },
  };
}

function config(...servers: Record<string, unknown>[]) {
  return parseMcpConfig(JSON.stringify({ mcpServers: Object.assign({}, ...servers) }), {
    format: "json",
    source: "test.json",
  });
}

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return content.filter((c) => c.type === "text").map((c) => c.text).join("");
}

for (const environment of ["local", "remote"] as const) {
  Deno.test(`manager ${environment}: tools, filters, routing, serial vs parallel`, async () => {
    const executor = environment === "remote" ? await startExecutor([]) : null;
    const statuses: McpServerStatus[] = [];
    const manager = await McpConnectionManager.start(
      config(
        server("serial", {
          environment,
          enabled_tools: ["echo", "slow", "stats", "env"],
          disabled_tools: ["env"],
        }),
        server("parallel", { environment, supports_parallel_tool_calls: true }),
        server("off", { environment, enabled: false }),
      ),
      {
        executor: executor ? { url: executor.url } : null,
        log: silentLogger,
        onStatus: (s) => statuses.push(s),
        graceMs: 300,
      },
    );
    try {
      const status = manager.status();
      assert.deepEqual(status.map((s) => [s.name, s.state, s.environment]), [
        ["serial", "ready", environment],
        ["parallel", "ready", environment],
        ["off", "disabled", environment],
      ]);
      assert.equal(status[0].tools, 3);
      assert.equal(status[0].serverInfo?.name, "test-mcp-server");
      assert.ok(statuses.some((s) => s.name === "serial" && s.state === "starting"));
      const names = manager.listTools().map((t) => t.name);
      assert.deepEqual(names.filter((n) => n.startsWith("serial__")).sort(), [
        "serial__echo",
        "serial__slow",
        "serial__stats",
      ]);
      assert.ok(names.includes("parallel__pid"));
      assert.equal(
        textOf(await manager.callTool("serial__echo", { message: "hi" })),
        "ECHOING: hi",
      );
      await assert.rejects(manager.callTool("serial__env", { name: "X" }), /unknown tool/);

      for (const name of ["serial", "parallel"]) {
        await Promise.all(
          [1, 2, 3].map((i) => manager.callTool(`${name}__slow`, { ms: 150, label: `${i}` })),
        );
        const stats = JSON.parse(textOf(await manager.callTool(`${name}__stats`)));
        assert.equal(stats.calls, 3);
        assert.equal(
          stats.maxConcurrent,
          name === "serial" ? 1 : 3,
          `${name}: ${JSON.stringify(stats)}`,
        );
      }
    } finally {
      await manager.close();
      await executor?.stop();
    }
  });
}

Deno.test("manager: a failed optional server is reported; a failed required one fails startup", async () => {
  const manager = await McpConnectionManager.start(
    config(
      server("good"),
      { broken: { command: "definitely-not-a-command-xyz" } },
    ),
    { log: silentLogger, graceMs: 300 },
  );
  const status = manager.status();
  assert.equal(status[0].state, "ready");
  assert.equal(status[1].state, "failed");
  assert.match(status[1].error!, /definitely-not-a-command-xyz/);
  await manager.close();

  await assert.rejects(
    McpConnectionManager.start(
      config(server("good"), {
        broken: { command: "definitely-not-a-command-xyz", required: true },
      }),
      { log: silentLogger, graceMs: 300 },
    ),
    (error: unknown) => error instanceof RequiredServerError && /broken/.test(error.message),
  );
});

Deno.test("manager: startup and tool timeouts", async () => {
  const manager = await McpConnectionManager.start(
    config(
      { mute: { command: "sleep", args: ["30"], startup_timeout_sec: 0.5 } },
      server("fixture", { tool_timeout_sec: 0.3 }),
    ),
    { log: silentLogger, graceMs: 300 },
  );
  try {
    const [mute] = manager.status();
    assert.equal(mute.state, "failed");
    assert.match(mute.error!, /timed out.*startup_timeout_sec/);
    await assert.rejects(
      manager.callTool("fixture__slow", { ms: 5000, label: "late" }),
      /timed out/i,
    );
  } finally {
    await manager.close();
  }
});

Deno.test("manager: colliding qualified names are an error naming both", async () => {
  const manager = await McpConnectionManager.start(
    config(server("a", {}, ["--tool-prefix", "b__"]), server("a__b")),
    { log: silentLogger, graceMs: 300 },
  );
  try {
    assert.throws(() => manager.listTools(), /a__b__echo is both a's b__echo and a__b's echo/);
  } finally {
    await manager.close();
  }
});

Deno.test("manager: a remote server without an executor is refused before anything starts", async () => {
  await assert.rejects(
    McpConnectionManager.start(config(server("r", { environment: "remote" })), {
      log: silentLogger,
      executor: null,
    }),
    /requires an executor/,
  );
});
