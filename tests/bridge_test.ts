/**
 * `bridge` as a process, driven over its stdin/stdout like an MCP client
 * would: only protocol bytes on stdout, clean exit when the client closes
 * stdin, non-zero exits with a message when the server or executor dies.
 */

import assert from "node:assert/strict";
import { startExecutor } from "./support/executor_process.ts";
import { waitGone } from "./support/processes.ts";
import { cliArgs, fixtureServer, runCli } from "./support/cli.ts";

interface Bridge {
  send(message: unknown): Promise<void>;
  next(): Promise<Record<string, unknown>>;
  closeStdin(): Promise<void>;
  /** Reads to the end; with `keepStdin` the bridge must end on its own. */
  finish(keepStdin?: boolean): Promise<{ code: number; stdout: string; stderr: string }>;
}

function startBridge(url: string, serverFlags: string[] = []): Bridge {
  const fixture = fixtureServer(...serverFlags);
  const child = new Deno.Command(Deno.execPath(), {
    args: cliArgs("bridge", "--executor", url, "--", Deno.execPath(), ...fixture.args),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  let consumed = 0;
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  let stdinOpen = true;
  return {
    send: (message) => writer.write(new TextEncoder().encode(JSON.stringify(message) + "\n")),
    async next() {
      while (!stdout.slice(consumed).includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`bridge stdout ended; stderr:\n${stderr}`);
        stdout += value;
      }
      const end = stdout.indexOf("\n", consumed);
      const line = stdout.slice(consumed, end);
      consumed = end + 1;
      return JSON.parse(line);
    },
    async closeStdin() {
      stdinOpen = false;
      await writer.close();
    },
    async finish(keepStdin = false) {
      if (stdinOpen && !keepStdin) await writer.close().catch(() => {});
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
      }
      await stderrDone;
      const status = await child.status;
      if (stdinOpen && keepStdin) await writer.close().catch(() => {});
      return { code: status.code, stdout, stderr };
    },
  };
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "t", version: "1" },
  },
};

async function handshake(bridge: Bridge) {
  await bridge.send(INITIALIZE);
  const init = await bridge.next();
  assert.equal(
    (init.result as { serverInfo: { name: string } }).serverInfo.name,
    "test-mcp-server",
  );
  await bridge.send({ jsonrpc: "2.0", method: "notifications/initialized" });
}

function call(id: number, name: string, args: Record<string, unknown>) {
  return { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } };
}

Deno.test("bridge: only protocol bytes on stdout; exits 0 and the server is gone when stdin closes", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, ["--noise"]);
    await handshake(bridge);
    await bridge.send(call(2, "pid", {}));
    const pidResponse = await bridge.next();
    const pid = Number((pidResponse.result as { content: { text: string }[] }).content[0].text);
    await bridge.closeStdin();
    const { code, stdout, stderr } = await bridge.finish();
    assert.equal(code, 0, stderr);
    for (const line of stdout.trim().split("\n")) JSON.parse(line);
    assert.ok(!stdout.includes("hello from a noisy server"));
    assert.match(stderr, /hello from a noisy server/);
    assert.match(stderr, /noisy server: tool call pid/);
    assert.ok(await waitGone(pid), "the remote server outlived the bridge");
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge: the remote server dying ends the bridge non-zero with a message", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, ["--exit-after-ms", "1500"]);
    await handshake(bridge);
    const { code, stderr } = await bridge.finish(true);
    assert.equal(code, 3);
    assert.match(stderr, /exited \(code 3\)/);
  } finally {
    await executor.stop();
  }
});

Deno.test("bridge: losing the executor ends the bridge non-zero with a message", async () => {
  const executor = await startExecutor([]);
  const bridge = startBridge(executor.url);
  await handshake(bridge);
  await executor.stop("SIGKILL");
  const { code, stderr } = await bridge.finish(true);
  assert.equal(code, 1);
  assert.match(stderr, /lost the executor/);
});

Deno.test("bridge: a missing executor is a clear error", async () => {
  const output = await runCli(["bridge", "--", "true"], { env: { EXECBRIDGE_EXECUTOR_URL: "" } });
  assert.equal(output.code, 1);
  assert.match(output.stderr, /no executor: pass --executor/);
  assert.equal(output.stdout, "");
});
