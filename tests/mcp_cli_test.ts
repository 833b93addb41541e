/** The `mcp` command for people: list, status, tools, call — tables and --json. */

import assert from "node:assert/strict";
import { startExecutor } from "./support/executor_process.ts";
import { fixtureServer, runCli } from "./support/cli.ts";

function mcp(args: string[], env: Record<string, string> = {}) {
  return runCli(["mcp", ...args], { env: { EXECBRIDGE_EXECUTOR_URL: "", ...env } });
}

async function withConfig(fn: (path: string) => Promise<void>) {
  const fixture = fixtureServer();
  const toml = [
    "[mcp_servers.here]",
    `command = ${JSON.stringify(fixture.command)}`,
    `args = ${JSON.stringify(fixture.args)}`,
    "",
    "[mcp_servers.there]",
    `command = ${JSON.stringify(fixture.command)}`,
    `args = ${JSON.stringify(fixture.args)}`,
    `experimental_environment = "remote"`,
    "",
  ].join("\n");
  const path = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    await Deno.writeTextFile(path, toml);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("mcp list: a table by default, JSON with --json", async () => {
  await withConfig(async (path) => {
    const table = await mcp(["list", "--config", path]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^SERVER\s+WHERE\s+ENABLED\s+COMMAND/);
    assert.match(table.stdout, /\nthere\s+remote\s+yes/);
    const json = JSON.parse((await mcp(["list", "--config", path, "--json"])).stdout);
    assert.deepEqual(json.servers.map((s: { name: string }) => s.name), ["here", "there"]);
  });
});

Deno.test("mcp status/tools/call through an executor; status fails without one", async () => {
  await withConfig(async (path) => {
    const missing = await mcp(["status", "--config", path]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /remote MCP server `there` requires an executor/);

    const executor = await startExecutor([]);
    try {
      const status = await mcp(["status", "--config", path, "--executor", executor.url, "--json"]);
      assert.equal(status.code, 0, status.stderr);
      const servers = JSON.parse(status.stdout).servers;
      assert.deepEqual(servers.map((s: { state: string }) => s.state), ["ready", "ready"]);
      assert.match(status.stderr, /here ready|ready/);

      const tools = await mcp(["tools", "there", "--config", path], {
        EXECBRIDGE_EXECUTOR_URL: executor.url,
      });
      assert.equal(tools.code, 0, tools.stderr);
      assert.match(tools.stdout, /there__echo/);
      assert.doesNotMatch(tools.stdout, /^here__/m);

      const call = await mcp([
        "call",
        "there",
        "echo",
        '{"message":"from the cli"}',
        "--config",
        path,
        "--executor",
        executor.url,
      ]);
      assert.equal(call.code, 0, call.stderr);
      assert.equal(call.stdout.trim(), "ECHOING: from the cli");
    } finally {
      await executor.stop();
    }
  });
});

Deno.test("mcp status exits 1 and names the server that failed", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      path,
      JSON.stringify({ mcpServers: { broken: { command: "no-such-cmd-xyz" } } }),
    );
    const result = await mcp(["status", "--config", path]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /broken\s+local\s+failed/);
    assert.match(result.stderr, /broken failed to start: .*no-such-cmd-xyz/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mcp status shows the restarts and the last exit of a server that crashed at startup", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    // It exits when asked for its tools: during startup, after the handshake. The list request
    // fails with it, and so does its startup: it is not restarted.
    const crashing = fixtureServer("--crash-on", "tools/list");
    await Deno.writeTextFile(
      path,
      JSON.stringify({ mcpServers: { crashing, steady: fixtureServer() } }),
    );
    const table = await mcp(["status", "--config", path]);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^SERVER\s+WHERE\s+STATUS\s+TOOLS\s+STARTUP\s+RESTARTS\s+LAST EXIT/);
    assert.match(table.stdout, /\ncrashing\s+local\s+failed\s+\d+ ms\s+0\s+exited \(code 3\)\s/);
    assert.match(table.stdout, /\nsteady\s+local\s+ready\s+\d+\s+\d+ ms\s+0\s+test-mcp-server/);
    const json = await mcp(["status", "--config", path, "--json"]);
    const [crashed, steady] = JSON.parse(json.stdout).servers;
    assert.deepEqual([crashed.restarts, crashed.lastExit], [0, "exited (code 3)"]);
    assert.deepEqual([steady.restarts, steady.lastExit], [0, undefined]);
  } finally {
    await Deno.remove(path);
  }
});
