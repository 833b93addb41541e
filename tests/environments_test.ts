/**
 * Named environments: servers placed on several executors by
 * `environment_id`, in Codex's shape (`environments.toml` beside
 * `config.toml`) and in JSON (`environments`); config errors that name the
 * server and the id; one connection per environment shared by its servers;
 * a down environment failing only its own servers; `mcp status` showing each
 * environment, as a table and as JSON.
 */

import assert from "node:assert/strict";
import { loadMcpConfig, McpConfigError, McpConnectionManager, parseMcpConfig } from "../mod.ts";
import { silentLogger } from "../src/log/logger.ts";
import { STARTS_PER_EXECUTOR } from "../src/mcp/connection_manager.ts";
import { CONFIG, fixtureServer, MOD, runCli } from "./support/cli.ts";
import { startExecutor, TEST_TOKEN } from "./support/executor_process.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_envs_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const toml = (value: string) => JSON.stringify(value);

Deno.test("environments: a Codex config.toml with environments.toml beside it is read as is", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/config.toml`,
      [
        'model = "gpt-5"',
        'approval_policy = "never"',
        "[features]",
        "multi_environment_mcp = true",
        "[mcp_servers.files]",
        'command = "npx"',
        'args = ["-y", "@modelcontextprotocol/server-filesystem", "/workspace"]',
        'cwd = "/workspace"',
        'environment_id = "devbox"',
        "[mcp_servers.here]",
        'command = "mcp-here"',
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/environments.toml`,
      [
        'default = "devbox"',
        "include_local = false",
        "[[environments]]",
        'id = "devbox"',
        'url = "ws://127.0.0.1:8765"',
        'auth_bearer_token = "secret"',
        "connect_timeout_sec = 5",
        "initialize_timeout_sec = 7",
        "[[environments]]",
        'id = "ssh-box"',
        'program = "ssh"',
        'args = ["devbox", "deno", "run", "-A", "/srv/mod.ts", "serve", "--listen", "stdio"]',
        "",
      ].join("\n"),
    );
    const config = await loadMcpConfig(`${dir}/config.toml`);
    const files = config.servers.find((s) => s.name === "files")!;
    assert.equal(files.environmentId, "devbox");
    assert.equal(files.environment, "remote");
    assert.equal(config.servers.find((s) => s.name === "here")!.environment, "local");
    assert.deepEqual(config.environments.map((e) => e.id), ["devbox", "ssh-box"]);
    const devbox = config.environments[0];
    assert.equal(devbox.url, "ws://127.0.0.1:8765");
    assert.equal(devbox.token, "secret");
    assert.equal(devbox.connectTimeoutMs, 5000);
    assert.equal(devbox.initializeTimeoutMs, 7000);
    assert.equal(config.environments[1].program, "ssh");
    assert.equal(config.environments[1].args.length, 8);
  });
});

Deno.test("environments: JSON environments with token_file and tls_ca resolved against the config", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/mcp.json`,
      JSON.stringify({
        environments: [{
          id: "gpu",
          url: "wss://gpu:8765",
          token_file: "gpu.token",
          tls_ca: "ca.pem",
        }],
        mcpServers: { train: { command: "trainer", environment_id: "gpu" } },
      }),
    );
    const config = await loadMcpConfig(`${dir}/mcp.json`);
    assert.equal(config.environments[0].tokenFile, `${dir}/gpu.token`);
    assert.equal(config.environments[0].tlsCa, `${dir}/ca.pem`);
    assert.equal(config.servers[0].environmentId, "gpu");
  });
});

Deno.test("environments: an unknown or duplicate id, or an entry without url or program, is an error naming it", () => {
  const json = (value: unknown) => () =>
    parseMcpConfig(JSON.stringify(value), { format: "json", source: "t.json" });
  assert.throws(
    json({
      environments: [{ id: "a", url: "ws://a:1" }],
      mcpServers: { s: { command: "x", environment_id: "b" } },
    }),
    (e: Error) =>
      e instanceof McpConfigError &&
      /MCP server `s` has environment_id `b`, but no environment has that id \(known: a\)/.test(
        e.message,
      ),
  );
  assert.throws(
    json({ environments: [{ id: "a", url: "ws://a:1" }, { id: "a", url: "ws://b:1" }] }),
    /environment `a` is defined twice/,
  );
  assert.throws(
    json({ environments: [{ id: "a" }] }),
    /environment `a`: has neither `url` nor `program`/,
  );
  assert.throws(
    json({ environments: [{ id: "a", url: "ws://a:1", program: "ssh" }] }),
    /environment `a`: sets both `url` and `program`/,
  );
  assert.throws(
    json({ environments: [{ id: "a", url: "http://a:1" }] }),
    /is not a ws:\/\/ or wss:\/\/ URL/,
  );
  assert.throws(
    json({
      environments: [{ id: "a", url: "ws://a:1" }],
      mcpServers: { s: { command: "x", environment_id: "a", environment: "local" } },
    }),
    /environment_id `a` places it on an executor, but environment says `local`/,
  );
  assert.throws(
    () =>
      parseMcpConfig('[mcp_servers.s]\ncommand = "x"\nenvironment_id = "nope"\n', {
        format: "toml",
        source: "c.toml",
      }),
    /MCP server `s` has environment_id `nope`, but no environment has that id \(none are defined\)/,
  );
});

Deno.test("environments: servers on two executors and one started as a program; a down environment fails only its servers; status per environment", async () => {
  const one = await startExecutor([]);
  const two = await startExecutor([]);
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const server = fixtureServer();
  const config = parseMcpConfig(
    JSON.stringify({
      environments: [
        { id: "one", url: one.url, token: TEST_TOKEN },
        { id: "two", url: two.url },
        {
          id: "piped",
          program: Deno.execPath(),
          args: [
            "run",
            "-A",
            "--config",
            CONFIG,
            MOD,
            "serve",
            "--listen",
            "stdio",
            "--log-level",
            "warn",
          ],
        },
        { id: "down", url: `ws://127.0.0.1:${deadPort}`, connect_timeout_sec: 2 },
        { id: "unused", url: `ws://127.0.0.1:${deadPort}` },
      ],
      mcpServers: {
        a: { ...server, environment_id: "one" },
        b: { ...server, environment_id: "one" },
        c: { ...server, environment_id: "two" },
        d: { ...server, environment_id: "piped" },
        e: { ...server, environment_id: "down" },
      },
    }),
    { format: "json", source: "envs.json" },
  );
  const manager = await McpConnectionManager.start(config, { log: silentLogger, graceMs: 300 });
  try {
    const states = Object.fromEntries(manager.status().map((s) => [s.name, s.state]));
    assert.deepEqual(states, { a: "ready", b: "ready", c: "ready", d: "ready", e: "failed" });
    const pid = async (name: string) =>
      JSON.parse(
        ((await manager.callTool(`${name}__session`)).content as { text: string }[])[0].text,
      ).pid as number;
    const pids = await Promise.all(["a", "b", "c", "d"].map(pid));
    assert.equal(new Set(pids).size, 4);
    assert.match(
      manager.status().find((s) => s.name === "e")!.error ?? "",
      /environment down cannot be reached/,
    );

    const environments = await manager.environments();
    assert.deepEqual(environments.map((e) => [e.id, e.transport, e.state, e.servers]), [
      ["one", "websocket", "connected", ["a", "b"]],
      ["two", "websocket", "connected", ["c"]],
      ["piped", "program", "connected", ["d"]],
      ["down", "websocket", "down", ["e"]],
    ]);
    for (const e of environments.slice(0, 3)) {
      assert.equal(e.executorVersion, "0.1.0");
      assert.ok((e.latencyMs ?? -1) >= 0);
    }
    assert.match(environments[3].error ?? "", /127\.0\.0\.1/);
    // One connection per environment, shared by its servers: executor one serves a and b.
    const metrics = await fetch(one.url.replace(/^ws/, "http") + "/metrics", {
      headers: { Authorization: `Bearer ${TEST_TOKEN}` },
    }).then((r) => r.text());
    assert.match(metrics, /^execbridge_connections_live 1$/m);
    assert.match(metrics, /^execbridge_processes_live 2$/m);
  } finally {
    await manager.close();
    await one.stop();
    await two.stop();
  }
});

Deno.test("mcp status shows each environment, as a table and as JSON", async () => {
  const executor = await startExecutor([]);
  try {
    await withDir(async (dir) => {
      const server = fixtureServer();
      await Deno.writeTextFile(
        `${dir}/config.toml`,
        [
          "[mcp_servers.srv]",
          `command = ${toml(server.command)}`,
          `args = [${server.args.map(toml).join(", ")}]`,
          'environment_id = "box"',
          "",
        ].join("\n"),
      );
      await Deno.writeTextFile(
        `${dir}/environments.toml`,
        `[[environments]]\nid = "box"\nurl = ${toml(executor.url)}\n`,
      );
      const text = await runCli(["mcp", "status", "--config", `${dir}/config.toml`]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^srv\s+box\s+ready/m);
      assert.match(
        text.stdout,
        /^ENVIRONMENT\s+TRANSPORT\s+STATE\s+VERSION\s+LATENCY\s+SERVERS/m,
      );
      assert.match(text.stdout, /^box\s+websocket\s+connected\s+0\.1\.0\s+\d+\.\d ms\s+srv/m);
      const json = await runCli(["mcp", "status", "--json", "--config", `${dir}/config.toml`]);
      const parsed = JSON.parse(json.stdout);
      assert.equal(parsed.environments[0].id, "box");
      assert.equal(parsed.environments[0].state, "connected");
      assert.deepEqual(parsed.environments[0].servers, ["srv"]);
      assert.equal(parsed.servers[0].environmentId, "box");
    });
  } finally {
    await executor.stop();
  }
});

Deno.test("manager: at most STARTS_PER_EXECUTOR servers start at once on one executor", async () => {
  const executor = await startExecutor([]);
  await withDir(async (dir) => {
    const log = `${dir}/starts.log`;
    const tiny = new URL("./fixtures/tiny_mcp_server.sh", import.meta.url).pathname;
    const servers: Record<string, unknown> = {};
    for (let i = 0; i < STARTS_PER_EXECUTOR + 4; i++) {
      servers[`s${i}`] = {
        command: "sh",
        args: ["-c", `echo start >> ${log}; sleep 0.3; echo ready >> ${log}; exec sh ${tiny}`],
        environment_id: "box",
      };
    }
    const config = parseMcpConfig(
      JSON.stringify({ environments: [{ id: "box", url: executor.url }], mcpServers: servers }),
      { format: "json", source: "starts.json" },
    );
    const manager = await McpConnectionManager.start(config, { log: silentLogger, graceMs: 300 });
    try {
      assert.equal(manager.listTools().length, STARTS_PER_EXECUTOR + 4);
      let running = 0;
      let most = 0;
      for (const line of (await Deno.readTextFile(log)).trim().split("\n")) {
        running += line === "start" ? 1 : -1;
        most = Math.max(most, running);
      }
      assert.ok(most <= STARTS_PER_EXECUTOR, `${most} started at once`);
      assert.ok(most > 1, "they did not start concurrently at all");
    } finally {
      await manager.close();
    }
  }).finally(() => executor.stop());
});

Deno.test("environments: resume_window_sec on an environment and on the executor section; a bad value is an error naming it", () => {
  const toml = parseMcpConfig(
    [
      "[executor]",
      'url = "ws://127.0.0.1:8765"',
      "resume_window_sec = 120",
      "[[environments]]",
      'id = "devbox"',
      'url = "ws://127.0.0.1:8766"',
      "resume_window_sec = 2.5",
      "[mcp_servers.files]",
      'command = "mcp-files"',
      'environment_id = "devbox"',
    ].join("\n"),
    { format: "toml", source: "window.toml" },
  );
  assert.equal(toml.executor?.resumeWindowMs, 120_000);
  assert.equal(toml.environments[0].resumeWindowMs, 2500);
  const json = parseMcpConfig(
    JSON.stringify({
      executor: { url: "ws://127.0.0.1:8765", resumeWindowSec: 5 },
      environments: [{ id: "gpu", url: "ws://127.0.0.1:8766" }],
      mcpServers: { train: { command: "trainer", environment_id: "gpu" } },
    }),
    { format: "json", source: "window.json" },
  );
  assert.equal(json.executor?.resumeWindowMs, 5000);
  assert.equal(json.environments[0].resumeWindowMs, undefined, "absent: the default (30 s)");
  for (
    const bad of [
      { executor: { url: "ws://127.0.0.1:1", resume_window_sec: 0 } },
      { environments: [{ id: "gpu", url: "ws://127.0.0.1:1", resume_window_sec: "30" }] },
    ]
  ) {
    assert.throws(
      () =>
        parseMcpConfig(JSON.stringify({ ...bad, mcpServers: {} }), {
          format: "json",
          source: "bad.json",
        }),
      (error: Error) => error instanceof McpConfigError && /resume_window_sec/.test(error.message),
    );
  }
});
