/**
 * The executor's wire protocol, driven with raw JSON-RPC frames against a real
 * `serve` subprocess: handshake gating, bad input, concurrency, sessions,
 * expiry, shutdown and auth.
 */

import assert from "node:assert/strict";
import { WebSocketHandshakeError } from "../src/transport/websocket_client.ts";
import { type ExecutorProcess, startExecutor } from "./support/executor_process.ts";
import { isRunning, waitGone } from "./support/processes.ts";
import { type Message, RawClient } from "./support/raw_client.ts";
import { ENV } from "./support/backends.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function withExecutor(
  args: string[],
  fn: (executor: ExecutorProcess) => Promise<void>,
  env?: Record<string, string>,
): Promise<void> {
  const executor = await startExecutor(args, { env });
  try {
    await fn(executor);
  } finally {
    await executor.stop();
  }
}

function start(client: RawClient, processId: string, argv: string[], extra = {}) {
  return client.request("process/start", {
    processId,
    argv,
    cwd: "/",
    env: ENV,
    tty: false,
    ...extra,
  });
}

function decode(message: Message): string {
  return new TextDecoder().decode(Uint8Array.fromBase64(message.params.chunk));
}

Deno.test("initialize returns a UUID session id; a second initialize is refused", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.connect(url);
    const first = await client.request("initialize", { clientName: "test" });
    assert.equal(first.jsonrpc, "2.0");
    assert.match(first.result.sessionId, UUID);
    const second = await client.request("initialize", { clientName: "test" });
    assert.equal(second.error.code, -32600);
    assert.equal(second.error.message, "initialize may only be sent once per connection");
    await client.close();
  });
});

Deno.test("bad frames get clear errors and the connection keeps working", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.connect(url);
    await client.sendRaw("not-json");
    const parseError = await client.nextUnmatched();
    assert.equal(parseError.id, null);
    assert.equal(parseError.error.code, -32700);
    assert.match(parseError.error.message, /^failed to parse JSON-RPC message/);

    await client.sendRaw("[1,2]");
    assert.equal((await client.nextUnmatched()).error.code, -32600);
    await client.sendRaw('{"id":{"x":1},"method":"initialize"}');
    assert.equal((await client.nextUnmatched()).error.code, -32600);

    const unknown = await client.request("no/such", {});
    assert.equal(unknown.error.code, -32601);
    assert.match(unknown.error.message, /unknown method "no\/such"/);

    // Without the jsonrpc field, like Codex's JSON-RPC lite.
    const init = await client.sendRaw(
      '{"id":"a","method":"initialize","params":{"clientName":"x"}}',
      "a",
    );
    assert.match(init.result.sessionId, UUID);
    client.notify("initialized");

    const badTypes = await client.request("process/start", { processId: "p", argv: "true" });
    assert.equal(badTypes.error.code, -32602);
    assert.match(badTypes.error.message, /argv/);
    const emptyArgv = await start(client, "p", []);
    assert.equal(emptyArgv.error.code, -32602);
    assert.match(emptyArgv.error.message, /argv must not be empty/);
    const negative = await client.request("process/read", { processId: "p", afterSeq: -1 });
    assert.equal(negative.error.code, -32602);
    const relative = await client.request("fs/readFile", { path: "relative.txt" });
    assert.equal(relative.error.code, -32602);
    const badBase64 = await client.request("fs/writeFile", { path: "/tmp/x", dataBase64: "!!!" });
    // -32600 as the reference: the params parsed, the bytes did not.
    assert.equal(badBase64.error.code, -32600);

    // A request with id null gets its response with id null.
    await client.sendRaw('{"jsonrpc":"2.0","id":null,"method":"no/such"}');
    const nullId = await client.nextUnmatched();
    assert.equal(nullId.id, null);
    assert.equal(nullId.error.code, -32601);

    // Still fully working.
    const ok = await start(client, "p", ["true"]);
    assert.deepEqual(ok.result, { processId: "p", sandboxType: "none" });
    await client.close();
  });
});

Deno.test("methods are gated on initialize and initialized", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.connect(url);
    const early = await start(client, "p", ["true"]);
    assert.equal(early.error.code, -32600);
    assert.equal(early.error.message, "client must call initialize before using exec methods");
    const fsEarly = await client.request("fs/getMetadata", { path: "/" });
    assert.equal(
      fsEarly.error.message,
      "client must call initialize before using filesystem methods",
    );
    await client.request("initialize", { clientName: "test" });
    const beforeInitialized = await start(client, "p", ["true"]);
    assert.equal(
      beforeInitialized.error.message,
      "client must send initialized before using exec methods",
    );
    client.notify("initialized", {});
    const ok = await start(client, "p", ["true"]);
    assert.deepEqual(ok.result, { processId: "p", sandboxType: "none" });
    await client.close();
  });
});

Deno.test("process surface: start, write statuses, read and terminate of unknown ids", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    assert.deepEqual((await start(client, "proc-1", ["true"])).result, {
      processId: "proc-1",
      sandboxType: "none",
    });
    await start(client, "sleeper", ["sleep", "5"]);
    const closedStdin = await client.request("process/write", {
      processId: "sleeper",
      chunk: btoa("x"),
    });
    assert.equal(closedStdin.result.status, "stdinClosed");
    const unknownWrite = await client.request("process/write", { processId: "nope", chunk: "" });
    assert.equal(unknownWrite.result.status, "unknownProcess");
    const unknownRead = await client.request("process/read", { processId: "nope" });
    assert.equal(unknownRead.error.code, -32600);
    assert.equal(unknownRead.error.message, "unknown process id nope");
    const unknownTerminate = await client.request("process/terminate", { processId: "nope" });
    assert.deepEqual(unknownTerminate.result, { running: false });
    const terminated = await client.request("process/terminate", { processId: "sleeper" });
    assert.deepEqual(terminated.result, { running: true });
    const exited = await client.waitNotification((m) =>
      m.method === "process/exited" && m.params.processId === "sleeper"
    );
    // As the reference: 128 + SIGKILL, and no sandbox.
    assert.equal(exited.params.exitCode, 137);
    assert.equal(exited.params.signal, "SIGKILL");
    assert.equal(exited.params.sandboxDenied, false);
    await client.waitNotification((m) =>
      m.method === "process/closed" && m.params.processId === "sleeper"
    );
    await client.close();
  });
});

Deno.test("a terminate sent while the process is still starting applies once it runs", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    const [started, terminated] = await Promise.all([
      start(client, "racer", ["sleep", "30"]),
      client.request("process/terminate", { processId: "racer" }),
    ]);
    assert.deepEqual(started.result, { processId: "racer", sandboxType: "none" });
    assert.deepEqual(terminated.result, { running: true });
    const exited = await client.waitNotification((m) =>
      m.method === "process/exited" && m.params.processId === "racer"
    );
    assert.equal(exited.params.signal, "SIGKILL");
    await client.close();
  });
});

Deno.test("a 5 s long-poll read never delays a write on the same connection", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    await start(client, "cat", ["cat"], { pipeStdin: true });
    const order: string[] = [];
    const read = client.request("process/read", { processId: "cat", afterSeq: 0, waitMs: 5000 })
      .then((m) => {
        order.push("read");
        return m;
      });
    const write = await client.request("process/write", {
      processId: "cat",
      chunk: btoa("ping\n"),
    });
    order.push("write");
    assert.equal(write.result.status, "accepted");
    const result = await read;
    assert.deepEqual(order, ["write", "read"]);
    assert.equal(atob(result.result.chunks[0].chunk), "ping\n");
    await client.request("process/terminate", { processId: "cat" });
    await client.close();
  });
});

Deno.test("a session survives its connection and resumes without killing processes", async () => {
  await withExecutor([], async ({ url }) => {
    const first = await RawClient.initialized(url);
    await start(first, "sleeper", ["sleep", "5"]);
    await first.close();
    const second = await RawClient.initialized(url, first.sessionId);
    assert.equal(second.sessionId, first.sessionId);
    const read = await second.request("process/read", { processId: "sleeper", waitMs: 0 });
    assert.equal(read.result.exited, false);
    assert.equal(read.result.closed, false);
    assert.equal(read.result.failure, null);
    const terminated = await second.request("process/terminate", { processId: "sleeper" });
    assert.deepEqual(terminated.result, { running: true });
    await second.close();
  });
});

Deno.test("resuming a session attached elsewhere is -32010; unknown ids are -32600", async () => {
  await withExecutor([], async ({ url }) => {
    const owner = await RawClient.initialized(url);
    const thief = await RawClient.connect(url);
    const refused = await thief.request("initialize", {
      clientName: "thief",
      resumeSessionId: owner.sessionId,
    });
    assert.equal(refused.error.code, -32010);
    assert.equal(
      refused.error.message,
      `session ${owner.sessionId} is already attached to another connection`,
    );
    // The failed attach does not use up the connection's initialize.
    const unknown = await thief.request("initialize", {
      clientName: "thief",
      resumeSessionId: "00000000-0000-4000-8000-000000000000",
    });
    assert.equal(unknown.error.code, -32600);
    assert.match(unknown.error.message, /unknown session id/);
    const fresh = await thief.request("initialize", { clientName: "thief" });
    assert.match(fresh.result.sessionId, UUID);
    await owner.close();
    await thief.close();
  });
});

Deno.test("a long-poll in flight on a dropped connection does not hold up the resume", async () => {
  await withExecutor([], async ({ url }) => {
    const first = await RawClient.initialized(url);
    await start(first, "sleeper", ["sleep", "30"]);
    first.request("process/read", { processId: "sleeper", afterSeq: 0, waitMs: 5000 });
    await first.close();
    const began = performance.now();
    const second = await RawClient.initialized(url, first.sessionId);
    // Well under the 5 s of the abandoned long-poll.
    assert.ok(performance.now() - began < 4000);
    const terminated = await second.request("process/terminate", { processId: "sleeper" });
    assert.deepEqual(terminated.result, { running: true });
    await second.close();
  });
});

Deno.test("an expired session's processes are killed, grandchildren included", async () => {
  await withExecutor(["--session-ttl-ms", "200"], async ({ url }) => {
    const client = await RawClient.initialized(url);
    await start(client, "tree", ["sh", "-c", "sleep 300 & echo $!; wait"]);
    const output = await client.waitNotification((m) => m.method === "process/output");
    const grandchild = Number(decode(output));
    assert.ok(isRunning(grandchild));
    await client.close();
    assert.ok(await waitGone(grandchild), "the grandchild outlived its session");
    const late = await RawClient.connect(url);
    const resumed = await late.request("initialize", {
      clientName: "late",
      resumeSessionId: client.sessionId,
    });
    assert.match(resumed.error.message, /unknown session id/);
    await late.close();
  });
});

Deno.test("SIGTERM kills every process group and exits 0", async () => {
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  await start(client, "tree", ["sh", "-c", "sleep 300 & echo $!; wait"]);
  const output = await client.waitNotification((m) => m.method === "process/output");
  const grandchild = Number(decode(output));
  const status = await executor.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.ok(await waitGone(grandchild), "the grandchild outlived the executor");
  await client.closed;
  await client.close();
});

Deno.test("with a token, upgrades without the right bearer token get 401", async () => {
  await withExecutor([], async ({ url }) => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: "Bearer wrong" },
      { Authorization: "s3cret" },
    ];
    for (const headers of attempts) {
      await assert.rejects(
        RawClient.connect(url, headers),
        (error: unknown) => error instanceof WebSocketHandshakeError && error.status === 401,
      );
    }
    await assert.rejects(
      RawClient.connect(`${url}/?token=s3cret`, {}),
      (error: unknown) => error instanceof WebSocketHandshakeError && error.status === 401,
    );
    const client = await RawClient.connect(url, { Authorization: "Bearer s3cret" });
    const init = await client.request("initialize", { clientName: "t" });
    assert.match(init.result.sessionId, UUID);
    await client.close();
  }, { ...ENV, EXECBRIDGE_TOKEN: "s3cret" });
});

Deno.test("--listen stdio serves JSON-RPC lines and exits when stdin ends", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      new URL("../mod.ts", import.meta.url).pathname,
      "serve",
      "--listen",
      "stdio",
      "--log-level",
      "warn",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  async function nextLine(): Promise<Message> {
    while (!buffer.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("stdout ended");
      buffer += value;
    }
    const at = buffer.indexOf("\n");
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    return JSON.parse(line);
  }
  const send = (message: unknown) =>
    writer.write(new TextEncoder().encode(JSON.stringify(message) + "\n"));
  await send({ id: 1, method: "initialize", params: { clientName: "ssh" } });
  assert.match((await nextLine()).result.sessionId, UUID);
  await send({ method: "initialized" });
  await send({
    id: 2,
    method: "process/start",
    params: { processId: "p", argv: ["sh", "-c", "echo hi; sleep 300"], env: ENV },
  });
  const seen: Message[] = [];
  // Output may arrive before the start response (as in the reference).
  while (!seen.some((m) => m.method === "process/output") || !seen.some((m) => m.id === 2)) {
    seen.push(await nextLine());
  }
  assert.ok(seen.some((m) => m.id === 2 && m.result?.processId === "p"));
  await writer.close();
  const status = await child.status;
  assert.equal(status.code, 0);
  await lines.cancel();
});

Deno.test("binaryOutput: output comes as binary frames to a client that asked, as JSON after a JSON client resumes", async () => {
  await withExecutor([], async ({ url }) => {
    const { decodeOutputFrame } = await import("../src/protocol/binary_output.ts");
    const { connectWebSocket } = await import("../src/transport/websocket_client.ts");
    const token = Deno.env.get("EXECBRIDGE_TOKEN");
    const ws = await connectWebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    const binary: Uint8Array[] = [];
    const texts: Message[] = [];
    let wake = () => {};
    ws.onmessage = (data) => {
      if (typeof data === "string") texts.push(JSON.parse(data));
      else binary.push(data);
      wake();
    };
    const until = async (test: () => boolean) => {
      while (!test()) await new Promise<void>((r) => wake = r);
    };
    ws.send(
      JSON.stringify({
        id: 1,
        method: "initialize",
        params: { clientName: "b", binaryOutput: true },
      }),
    );
    await until(() => texts.some((m) => m.id === 1));
    const init = texts.find((m) => m.id === 1)!;
    assert.equal(init.result.binaryOutput, true);
    assert.equal(init.result.writeNotifications, true);
    ws.send('{"method":"initialized"}');
    ws.send(JSON.stringify({
      id: 2,
      method: "process/start",
      params: { processId: "cat", argv: ["cat"], env: ENV, pipeStdin: true },
    }));
    await until(() => texts.some((m) => m.id === 2));
    // A write sent as a notification gets no response, and its echo arrives as a binary frame.
    ws.send(
      JSON.stringify({
        method: "process/write",
        params: { processId: "cat", chunk: btoa("bin\n") },
      }),
    );
    await until(() => binary.length > 0);
    const frame = decodeOutputFrame(binary[0])!;
    assert.deepEqual(
      { ...frame, chunk: new TextDecoder().decode(frame.chunk) },
      { processId: "cat", seq: 1, stream: "stdout", chunk: "bin\n" },
    );
    assert.equal(texts.filter((m) => m.id === undefined && m.result).length, 0);
    await ws.close();

    // A client without binaryOutput resumes the session: output is JSON again.
    const json = await RawClient.initialized(url, init.result.sessionId);
    await json.request("process/write", { processId: "cat", chunk: btoa("text\n") });
    const output = await json.waitNotification((m) => m.method === "process/output");
    assert.equal(output.params.seq, 2);
    assert.equal(decode(output), "text\n");
    await json.request("process/terminate", { processId: "cat" });
    await json.close();
  });
});

Deno.test("a client flooding stdin with notification writes is cut off", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    await start(client, "deaf", ["sleep", "30"], { pipeStdin: true });
    const chunk = new Uint8Array(4 * 1024 * 1024).toBase64();
    for (let i = 0; i < 20; i++) {
      client.notify("process/write", { processId: "deaf", chunk });
      while (client.socket.bufferedAmount > 8 * 1024 * 1024) {
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    // 1008 when the close frame is read; 1006 when the reset of a socket we
    // were still writing to beat it.
    assert.ok([1008, 1006].includes((await client.closed).code));
    await client.close();
  });
});

Deno.test({
  name:
    "serve: says how to save ~1.8 MiB per process when started without the lean-workers V8 flag",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const hint = /--v8-flags=--no-short-builtin-calls to save it/;
    const plain = await startExecutor(["--log-level", "info"]);
    await plain.stop();
    assert.match(plain.stderr(), hint);
    const lean = await startExecutor(["--log-level", "info"], {
      denoFlags: ["--v8-flags=--no-short-builtin-calls"],
    });
    await lean.stop();
    assert.doesNotMatch(lean.stderr(), hint);
    assert.match(lean.stderr(), /listening on/);
  },
});

Deno.test("binaryWrites: stdin as binary frames (answered requests and notifications), every byte value; malformed frames get an error and change nothing", async () => {
  await withExecutor([], async ({ url }) => {
    const { encodeWriteFrame } = await import("../src/protocol/binary_write.ts");
    const { connectWebSocket } = await import("../src/transport/websocket_client.ts");
    const token = Deno.env.get("EXECBRIDGE_TOKEN");
    const ws = await connectWebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    const texts: Message[] = [];
    let wake = () => {};
    ws.onmessage = (data) => {
      if (typeof data === "string") texts.push(JSON.parse(data));
      wake();
    };
    const until = async (test: () => boolean) => {
      while (!test()) await new Promise<void>((r) => wake = r);
    };
    const response = async (id: number) => {
      await until(() => texts.some((m) => m.id === id));
      return texts.find((m) => m.id === id)!;
    };
    ws.send(JSON.stringify({
      id: 1,
      method: "initialize",
      params: { clientName: "b", binaryWrites: true },
    }));
    assert.equal((await response(1)).result.binaryWrites, true);
    ws.send('{"method":"initialized"}');
    ws.send(JSON.stringify({
      id: 2,
      method: "process/start",
      params: { processId: "cat", argv: ["cat"], env: ENV, pipeStdin: true },
    }));
    await response(2);
    const id = new TextEncoder().encode("cat");
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    // A notification (no answer), then a request answered with its status.
    ws.sendBinary(encodeWriteFrame(id, all));
    ws.sendBinary(encodeWriteFrame(id, all.toReversed(), { requestId: 3 }));
    assert.deepEqual((await response(3)).result, { status: "accepted" });
    // Malformed: unknown flags, an empty process id. Each gets an error; nothing is written.
    const bad = encodeWriteFrame(id, new Uint8Array([1, 2, 3]));
    bad[1] = 0x80;
    ws.sendBinary(bad);
    ws.sendBinary(encodeWriteFrame(new Uint8Array(0), new Uint8Array([4])));
    await until(() => texts.filter((m) => m.error?.code === -32600).length === 2);
    // A malformed request is answered with its id, so that the caller is not left waiting.
    ws.sendBinary(encodeWriteFrame(new Uint8Array(0), new Uint8Array([5]), { requestId: 9 }));
    assert.equal((await response(9)).error.code, -32600);
    // Unknown process: answered like a JSON write.
    const other = new TextEncoder().encode("nope");
    ws.sendBinary(encodeWriteFrame(other, all, { requestId: 4 }));
    assert.deepEqual((await response(4)).result, { status: "unknownProcess" });
    // Close stdin with a binary request: cat ends; its output is exactly what was written.
    ws.sendBinary(encodeWriteFrame(id, new Uint8Array(0), { requestId: 5, closeStdin: true }));
    assert.deepEqual((await response(5)).result, { status: "accepted" });
    ws.send(JSON.stringify({
      id: 100,
      method: "process/read",
      params: { processId: "cat", waitMs: 5000 },
    }));
    const bytes: number[] = [];
    let afterSeq = 0;
    // Request ids from 100 on: the ones above are taken (a reused id would match their answers).
    for (let n = 101;; n++) {
      const read = n === 101 ? await response(100) : await (async () => {
        ws.send(JSON.stringify({
          id: n,
          method: "process/read",
          params: { processId: "cat", afterSeq, waitMs: 5000 },
        }));
        return await response(n);
      })();
      for (const c of read.result.chunks) bytes.push(...Uint8Array.fromBase64(c.chunk));
      afterSeq = read.result.nextSeq - 1;
      if (read.result.closed) break;
    }
    assert.deepEqual(new Uint8Array(bytes), new Uint8Array([...all, ...all.toReversed()]));
    await ws.close();
  });
});

Deno.test("binaryWrites: without the opt-in a binary frame is JSON text, as before", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    const { encodeWriteFrame } = await import("../src/protocol/binary_write.ts");
    client.socket.sendBinary(encodeWriteFrame(new TextEncoder().encode("x"), new Uint8Array([1])));
    const error = await client.nextUnmatched();
    assert.equal(error.error.code, -32700);
    await client.close();
  });
});

Deno.test("resumableCalls: a repeated call is answered once, a running one when it ends, a forgotten one with an error", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.connect(url);
    const init = await client.sendRaw(
      JSON.stringify({
        id: 1,
        method: "initialize",
        params: { clientName: "test", resumableCalls: "numbering-1" },
      }),
      1,
    );
    assert.equal(init.result.resumableCalls, true);
    client.notify("initialized", {});
    const call = (id: number, method: string, params: unknown) =>
      client.sendRaw(JSON.stringify({ id, method, params }), id);
    const startParams = { processId: "once", argv: ["cat"], env: ENV, tty: false, pipeStdin: true };
    const first = await call(2, "process/start", startParams);
    assert.equal(first.result.processId, "once");
    // The same id again: the same answer, no second start (which would be "already exists").
    assert.deepEqual(await call(2, "process/start", startParams), first);
    // A new id does run: the executor really refuses a second start.
    assert.match((await call(3, "process/start", startParams)).error.message, /already exists/);

    // A long-poll still running when the connection drops: the resumed client's repeat gets it.
    void call(4, "process/read", { processId: "once", afterSeq: 0, waitMs: 10_000 });
    await client.close();
    const resumed = await RawClient.connect(url);
    // Until the executor has seen the close, the session is still attached (-32010): ask again.
    let again;
    for (let id = 1000;; id++) {
      again = await resumed.sendRaw(
        JSON.stringify({
          id,
          method: "initialize",
          params: {
            clientName: "test",
            resumeSessionId: init.result.sessionId,
            resumableCalls: "numbering-1",
          },
        }),
        id,
      );
      if (again.error?.code !== -32010) break;
    }
    assert.equal(again.result.sessionId, init.result.sessionId);
    resumed.notify("initialized", {});
    const call2 = (id: number, method: string, params: unknown) =>
      resumed.sendRaw(JSON.stringify({ id, method, params }), id);
    const read = call2(4, "process/read", { processId: "once", afterSeq: 0, waitMs: 10_000 });
    const written = await call2(6, "process/write", {
      processId: "once",
      chunk: btoa("hi\n"),
      writeId: "w1",
    });
    assert.equal(written.result.status, "accepted");
    const chunks = (await read).result.chunks;
    assert.equal(atob(chunks[0].chunk), "hi\n");

    // Past the log's bounds an answer is forgotten: its repeat is refused, not run again.
    for (let id = 100; id < 100 + 1030; id++) {
      await call2(id, "environment/status", {});
    }
    const forgotten = await call2(100, "environment/status", {});
    assert.equal(forgotten.error.code, -32600);
    assert.match(forgotten.error.message, /answer to request 100 .* was lost/);
    await call2(7, "process/terminate", { processId: "once" });
    await resumed.close();
  });
});

Deno.test("without resumableCalls a repeated id runs again, as the reference does", async () => {
  await withExecutor([], async ({ url }) => {
    const client = await RawClient.initialized(url);
    const call = (id: number) =>
      client.sendRaw(
        JSON.stringify({
          id,
          method: "process/start",
          params: { processId: "twice", argv: ["true"], env: ENV, tty: false },
        }),
        id,
      );
    assert.ok((await call(50)).result);
    assert.match((await call(50)).error.message, /already exists/);
    await client.close();
  });
});
