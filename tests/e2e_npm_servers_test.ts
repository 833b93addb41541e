/**
 * End to end with the real npm MCP servers (server-everything,
 * server-filesystem, server-memory; installed in tests/e2e by `.ci/run`):
 * what a client sees through an executor equals what it sees from a direct
 * local run, and `bridge` works for real MCP clients in other processes
 * (the SDK client with its own stdio transport, and the inspector CLI).
 */

import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import { connectExecutor } from "../mod.ts";
import { silentLogger } from "../src/log/logger.ts";
import { parseMcpConfig } from "../src/mcp/config.ts";
import { McpConnectionManager } from "../src/mcp/connection_manager.ts";
import { ExecutorStdioServerLauncher } from "../src/mcp/executor_stdio.ts";
import { LocalStdioServerLauncher } from "../src/mcp/local_stdio.ts";
import type { StdioServerCommand } from "../src/mcp/stdio_command.ts";
import { startExecutor } from "./support/executor_process.ts";
import { cliArgs, denoRun } from "./support/cli.ts";

const MODULES = new URL("./e2e/node_modules/", import.meta.url).pathname;

function server(pkg: string, args: string[], extra: Partial<StdioServerCommand> = {}) {
  return {
    name: pkg,
    command: "node",
    args: [`${MODULES}@modelcontextprotocol/${pkg}/dist/index.js`, ...args],
    ...extra,
  };
}

async function connect(transport: Transport): Promise<Client> {
  const client = new Client({ name: "e2e", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

/** Runs `fn` against the same server started locally and on an executor. */
async function bothPlacements(
  command: StdioServerCommand,
  fn: (local: Client, remote: Client) => Promise<void>,
): Promise<void> {
  const executor = await startExecutor([]);
  const connection = await connectExecutor(executor.url);
  const localTransport = await new LocalStdioServerLauncher({ log: silentLogger }).launch(command);
  const remoteTransport = await new ExecutorStdioServerLauncher(connection, { log: silentLogger })
    .launch(command);
  try {
    const [local, remote] = await Promise.all([connect(localTransport), connect(remoteTransport)]);
    await fn(local, remote);
    await Promise.all([local.close(), remote.close()]);
  } finally {
    await Promise.all([localTransport.close(), remoteTransport.close()]);
    await connection.close();
    await executor.stop();
  }
}

async function tools(client: Client) {
  return (await client.listTools()).tools;
}

Deno.test("e2e server-everything: same tools and results locally and through the executor", async () => {
  await bothPlacements(server("server-everything", ["stdio"]), async (local, remote) => {
    assert.deepEqual(await tools(remote), await tools(local));
    for (
      const call of [
        { name: "echo", arguments: { message: "hello" } },
        { name: "get-sum", arguments: { a: 2, b: 40 } },
        { name: "get-tiny-image", arguments: {} },
      ]
    ) {
      assert.deepEqual(await remote.callTool(call), await local.callTool(call));
    }
    const sum = await remote.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } });
    assert.match(JSON.stringify(sum.content), /42/);
  });
});

Deno.test("e2e server-filesystem: same tools and results locally and through the executor", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.writeTextFile(`${dir}/hello.txt`, "hello from disk\n");
    await bothPlacements(server("server-filesystem", [dir]), async (local, remote) => {
      assert.deepEqual(await tools(remote), await tools(local));
      const read = { name: "read_text_file", arguments: { path: `${dir}/hello.txt` } };
      assert.deepEqual(await remote.callTool(read), await local.callTool(read));
      assert.match(JSON.stringify((await remote.callTool(read)).content), /hello from disk/);
      await remote.callTool({
        name: "write_file",
        arguments: { path: `${dir}/remote.txt`, content: "written remotely" },
      });
      assert.equal(await Deno.readTextFile(`${dir}/remote.txt`), "written remotely");
      const list = { name: "list_directory", arguments: { path: dir } };
      assert.deepEqual(await remote.callTool(list), await local.callTool(list));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e server-memory: same tools and results locally and through the executor", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const local = server("server-memory", [], { env: { MEMORY_FILE_PATH: `${dir}/local.jsonl` } });
    const remote = { ...local, env: { MEMORY_FILE_PATH: `${dir}/remote.jsonl` } };
    const executor = await startExecutor([]);
    const connection = await connectExecutor(executor.url);
    const lt = await new LocalStdioServerLauncher({ log: silentLogger }).launch(local);
    const rt = await new ExecutorStdioServerLauncher(connection, { log: silentLogger }).launch(
      remote,
    );
    try {
      const [l, r] = await Promise.all([connect(lt), connect(rt)]);
      assert.deepEqual(await tools(r), await tools(l));
      const create = {
        name: "create_entities",
        arguments: {
          entities: [{ name: "execbridge", entityType: "project", observations: ["runs MCP"] }],
        },
      };
      assert.deepEqual(await r.callTool(create), await l.callTool(create));
      const graph = { name: "read_graph", arguments: {} };
      const remoteGraph = await r.callTool(graph);
      assert.deepEqual(remoteGraph, await l.callTool(graph));
      assert.match(JSON.stringify(remoteGraph.content), /runs MCP/);
      await Promise.all([l.close(), r.close()]);
    } finally {
      await Promise.all([lt.close(), rt.close()]);
      await connection.close();
      await executor.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function bridgeArgs(url: string): string[] {
  return cliArgs(
    "bridge",
    "--executor",
    url,
    "--log-level",
    "warn",
    "--",
    "node",
    `${MODULES}@modelcontextprotocol/server-everything/dist/index.js`,
    "stdio",
  );
}

Deno.test("e2e bridge: an SDK client in another process uses server-everything on the executor", async () => {
  const executor = await startExecutor([]);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: denoRun(
        new URL("./fixtures/sdk_client_process.ts", import.meta.url).pathname,
        "--",
        Deno.execPath(),
        ...bridgeArgs(executor.url),
      ),
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.ok(result.tools.includes("echo") && result.tools.includes("get-sum"));
    assert.match(JSON.stringify(result.echo), /from another process/);
  } finally {
    await executor.stop();
  }
});

Deno.test("e2e bridge: the MCP inspector CLI lists and calls tools through the bridge", async () => {
  const executor = await startExecutor([]);
  // Like an MCP client config, the inspector gets one command: a script running the bridge.
  const script = await Deno.makeTempFile({ suffix: ".sh" });
  try {
    const quoted = [Deno.execPath(), ...bridgeArgs(executor.url)].map((a) => `'${a}'`).join(" ");
    await Deno.writeTextFile(script, `#!/bin/sh\nexec ${quoted}\n`);
    await Deno.chmod(script, 0o755);
    const inspect = async (...method: string[]) => {
      const output = await new Deno.Command("node", {
        args: ["@modelcontextprotocol/inspector-cli/build/index.js", script, ...method],
        // The inspector looks for ../package.json relative to its cwd.
        cwd: MODULES,
        stdin: "null",
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      return JSON.parse(new TextDecoder().decode(output.stdout));
    };
    const listed = await inspect("--method", "tools/list");
    assert.ok(listed.tools.some((t: { name: string }) => t.name === "get-sum"));
    const called = await inspect(
      "--method",
      "tools/call",
      "--tool-name",
      "get-sum",
      "--tool-arg",
      "a=2",
      "b=40",
    );
    assert.match(JSON.stringify(called), /The sum of 2 and 40 is 42/);
  } finally {
    await Deno.remove(script);
    await executor.stop();
  }
});

/** server-everything in its streamable-HTTP mode on a free loopback port, until `stop()`. */
async function startHttpEverything(): Promise<{ url: string; stop(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command("node", {
    args: [`${MODULES}@modelcontextprotocol/server-everything/dist/index.js`, "streamableHttp"],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening on port")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`server-everything did not start:\n${seen}`);
    seen += value;
  }
  const drained = (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await drained;
    },
  };
}

Deno.test("e2e server-everything over streamable HTTP, placed on the executor: its requests go through http/request", async () => {
  const http = await startHttpEverything();
  const executor = await startExecutor([]);
  const client = await connectExecutor(executor.url);
  // The same client, with every fetch counted: the manager must use the executor's.
  let fetched = 0;
  const counted = Object.assign(Object.create(client), {
    fetch: (input: string | URL | Request, init?: RequestInit) => {
      fetched++;
      return client.fetch(input, init);
    },
  });
  const config = parseMcpConfig(
    JSON.stringify({ mcpServers: { web: { url: http.url, environment: "remote" } } }),
    { format: "json", source: "test.json" },
  );
  const manager = await McpConnectionManager.start(config, {
    executor: counted,
    log: silentLogger,
  });
  try {
    const [status] = manager.status();
    assert.equal(status.state, "ready", status.error);
    assert.ok(manager.listTools().some((t) => t.name === "web__echo"));
    const result = await manager.callTool("web__echo", { message: "through the executor" });
    assert.match(JSON.stringify(result), /through the executor/);
    assert.ok(fetched >= 3, `only ${fetched} requests went through the executor`);
  } finally {
    await manager.close();
    await client.close();
    await executor.stop();
    await http.stop();
  }
});
