/**
 * `bridge` as a process, driven over its stdin/stdout like an MCP client
 * would: only protocol bytes on stdout, clean exit when the client closes
 * stdin, non-zero exits with a message when the server or executor dies.
 */

import assert from "node:assert/strict";
import { startExecutor } from "./support/executor_process.ts";
import { waitGone } from "./support/processes.ts";
import { runCli } from "./support/cli.ts";
import { call, handshake, startBridge } from "./support/bridge_process.ts";

Deno.test("bridge: only protocol bytes on stdout; exits 0 and the server is gone when stdin closes", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, { serverFlags: ["--noise"] });
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

Deno.test("bridge --no-respawn: the remote server dying ends the bridge with its code and a message", async () => {
  const executor = await startExecutor([]);
  try {
    const bridge = startBridge(executor.url, {
      serverFlags: ["--exit-after-ms", "1500"],
      bridgeFlags: ["--no-respawn"],
    });
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
