/**
 * The client library against a scripted fake executor (reordering,
 * duplicates, out-of-order responses, floods) and against a real executor
 * that dies (the disconnect latch).
 */

import assert from "node:assert/strict";
import { connectExecutor, DISCONNECTED_PREFIX, type ExecProcessEvent } from "../mod.ts";
import { EventQueue } from "../src/exec/event_queue.ts";
import type { TextChannel } from "../src/transport/channel.ts";
import { RpcClient } from "../src/rpc/rpc_client.ts";
import { startExecutor } from "./support/executor_process.ts";
import { ENV } from "./support/backends.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/**
 * A fake executor: answers initialize (as April's reference, or with
 * `environmentInfo` as today's), then lets the test script everything else.
 */
function fakeExecutor(
  onRequest: (message: Json, socket: WebSocket) => void,
  options: { environmentInfo?: Json } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const sockets: WebSocket[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    sockets.push(socket);
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.method === "initialize") {
        const result = { sessionId: crypto.randomUUID(), environmentInfo: options.environmentInfo };
        socket.send(JSON.stringify({ id: message.id, result }));
      } else if (message.id !== undefined) {
        onRequest(message, socket);
      }
    };
    return response;
  });
  const addr = server.addr as Deno.NetAddr;
  return Promise.resolve({
    url: `ws://127.0.0.1:${addr.port}`,
    async close() {
      for (const socket of sockets) {
        if (socket.readyState === WebSocket.OPEN) socket.close();
      }
      await server.shutdown();
    },
  });
}

function output(processId: string, seq: number, data: string) {
  return JSON.stringify({
    method: "process/output",
    params: { processId, seq, stream: "stdout", chunk: btoa(data) },
  });
}

async function collect(events: AsyncIterableIterator<ExecProcessEvent>) {
  const list: ExecProcessEvent[] = [];
  for await (const event of events) list.push(event);
  return list;
}

Deno.test("client: reordered and duplicated notifications are delivered once, in seq order", async () => {
  const fake = await fakeExecutor((message, socket) => {
    if (message.method !== "process/start") return;
    const id = message.params.processId;
    socket.send(JSON.stringify({ method: "process/closed", params: { processId: id, seq: 4 } }));
    socket.send(output(id, 1, "a"));
    socket.send(JSON.stringify({ id: message.id, result: { processId: id } }));
    socket.send(
      JSON.stringify({ method: "process/exited", params: { processId: id, seq: 3, exitCode: 0 } }),
    );
    socket.send(output(id, 1, "a"));
    socket.send(output(id, 2, "b"));
    socket.send(output(id, 2, "b"));
  });
  const client = await connectExecutor(fake.url);
  const proc = await client.start({ processId: "p", argv: ["x"] });
  const events = await collect(proc.events());
  assert.deepEqual(events.map((e) => "seq" in e ? e.seq : e.type), [1, 2, 3, 4]);
  await client.close();
  await fake.close();
});

/** A channel in memory: what the client sends is recorded; `lose()` ends it as a dropped link would. */
function memoryChannel() {
  const sent: Json[] = [];
  const channel: TextChannel = {
    onmessage: null,
    onbinary: null,
    onclose: null,
    bufferedAmount: 0,
    peer: "memory",
    binary: false,
    sendBinary() {},
    send(text) {
      sent.push(JSON.parse(text));
    },
    close() {
      return Promise.resolve();
    },
  };
  return { channel, sent, lose: () => channel.onclose!("link lost") };
}

Deno.test("rpc client: responses arriving out of order are matched by id", async () => {
  const { channel, sent } = memoryChannel();
  const rpc = new RpcClient(channel);
  const calls = ["a", "b", "c"].map((name) => rpc.call("echo", { name }));
  for (const request of [...sent].reverse()) {
    channel.onmessage!(JSON.stringify({ id: request.id, result: request.params.name }));
  }
  assert.deepEqual(await Promise.all(calls), ["a", "b", "c"]);
  await rpc.disconnect();
  await assert.rejects(rpc.call("echo"), (e: Error) => e.message.startsWith(DISCONNECTED_PREFIX));
});

Deno.test("rpc client: after a lost link, held requests and unconfirmed replayable notifications go out again in their first order; an answer confirms what went before it", async () => {
  const first = memoryChannel();
  let lost = 0;
  const rpc = new RpcClient(first.channel, { onLost: () => ++lost > 0 });
  rpc.notify("w", { n: 1 }, { replayable: true });
  const answered = rpc.call("r", { n: 2 });
  rpc.notify("w", { n: 3 }, { replayable: true });
  const unanswered = rpc.call("r", { n: 4 });
  rpc.notify("plain", { n: 5 });
  assert.equal(rpc.unconfirmed, 2);
  // The answer to n=2 proves the server had n=1.
  first.channel.onmessage!(JSON.stringify({ id: first.sent[1].id, result: "ok" }));
  assert.equal(await answered, "ok");
  assert.equal(rpc.unconfirmed, 1);

  first.lose();
  assert.equal(lost, 1);
  assert.ok(rpc.holding);
  rpc.notify("w", { n: 6 }, { replayable: true });
  rpc.notify("plain", { n: 7 }); // dropped: no link to carry it
  const later = rpc.call("r", { n: 8 });

  const second = memoryChannel();
  rpc.replaceChannel(second.channel);
  const handshake = rpc.call("hello", {}, { now: true });
  assert.deepEqual(second.sent.map((m) => m.method), ["hello"]);
  second.channel.onmessage!(JSON.stringify({ id: second.sent[0].id, result: "hi" }));
  assert.equal(await handshake, "hi");
  rpc.release();
  // Unconfirmed n=3, unanswered n=4 (same id as before), then what waited: n=6, n=8.
  assert.deepEqual(second.sent.slice(1).map((m) => m.params.n), [3, 4, 6, 8]);
  assert.equal(second.sent[2].id, first.sent[3].id);
  for (const request of second.sent.filter((m) => m.id !== undefined).slice(1)) {
    second.channel.onmessage!(JSON.stringify({ id: request.id, result: request.params.n }));
  }
  assert.deepEqual(await Promise.all([unanswered, later]), [4, 8]);
  assert.equal(rpc.unconfirmed, 0);
  await rpc.disconnect();
});

Deno.test("client: a flood for one process does not hold up another", async () => {
  const fake = await fakeExecutor((message, socket) => {
    if (message.method !== "process/start") return;
    const id = message.params.processId;
    socket.send(JSON.stringify({ id: message.id, result: { processId: id } }));
    if (id === "busy") {
      for (let seq = 1; seq <= 4097; seq++) socket.send(output(id, seq, "x"));
    } else {
      socket.send(output(id, 1, "quiet"));
    }
  });
  const client = await connectExecutor(fake.url);
  const busy = await client.start({ processId: "busy", argv: ["x"] });
  const quiet = await client.start({ processId: "quiet", argv: ["x"] });
  const first = await quiet.events().next();
  assert.equal(first.value?.type, "output");
  // The busy process's history keeps the newest 256 events for late subscribers.
  const replay = busy.events();
  const firstReplayed = await replay.next();
  assert.ok(firstReplayed.value && "seq" in firstReplayed.value);
  await replay.return?.();
  await client.close();
  await fake.close();
});

Deno.test("event queue: a slow subscriber gets `lagged` and keeps the newest events", async () => {
  const queue = new EventQueue({ maxEvents: 4 });
  for (let seq = 1; seq <= 10; seq++) {
    queue.push({ type: "output", seq, stream: "stdout", chunk: new Uint8Array(1) });
  }
  queue.push({ type: "closed", seq: 11 });
  const events = await collect(queue);
  assert.deepEqual(events[0], { type: "lagged", skipped: 7, lastSeq: 0 });
  assert.deepEqual(events.slice(1).map((e) => "seq" in e ? e.seq : e.type), [8, 9, 10, 11]);
});

Deno.test("client: losing the executor fails pending calls at once and every later call fast", async () => {
  const executor = await startExecutor([]);
  const client = await connectExecutor(executor.url);
  const proc = await client.start({ processId: "sleeper", argv: ["sleep", "10"], env: ENV });
  const events = proc.events();
  const pendingRead = proc.read({ afterSeq: 0, waitMs: 60_000 });
  await executor.stop("SIGKILL");

  const failed = await events.next();
  assert.equal(failed.value?.type, "failed");
  assert.ok((failed.value as { message: string }).message.startsWith(DISCONNECTED_PREFIX));
  const read = await pendingRead;
  assert.ok(read.failure?.startsWith(DISCONNECTED_PREFIX));
  const later = await proc.read();
  assert.equal(later.closed, true);
  assert.ok(later.failure?.startsWith(DISCONNECTED_PREFIX));
  await assert.rejects(proc.write("x"), (e: Error) => e.message.startsWith(DISCONNECTED_PREFIX));
  await assert.rejects(proc.terminate(), (e: Error) => e.message.startsWith(DISCONNECTED_PREFIX));
  await assert.rejects(
    client.start({ processId: "new", argv: ["true"] }),
    (e: Error) => e.message.startsWith(DISCONNECTED_PREFIX),
  );
  await assert.rejects(
    client.fs.getMetadata("/"),
    (e: Error) => e.message.startsWith(DISCONNECTED_PREFIX),
  );
  assert.ok(client.disconnected?.startsWith(DISCONNECTED_PREFIX));
  await client.close();
});

Deno.test("client: after a resume, attach() picks up processes started before the disconnect", async () => {
  const executor = await startExecutor([]);
  try {
    const first = await connectExecutor(executor.url);
    const live = await first.start({
      processId: "live",
      argv: ["sh", "-c", "cat; echo bye"],
      env: ENV,
      pipeStdin: true,
    });
    await live.write("before\n");
    await live.read({ waitMs: 5000 });
    const done = await first.start({
      processId: "done",
      argv: ["sh", "-c", "sleep 0.3; echo finished; exit 3"],
      env: ENV,
    });
    void done;
    await first.close();

    const second = await connectExecutor(executor.url, { resumeSessionId: first.sessionId });
    assert.equal(second.sessionId, first.sessionId);
    await assert.rejects(second.start({ processId: "live", argv: ["true"] }), /already exists/);
    await assert.rejects(second.attach("nope"), /unknown process id nope/);

    // `done` closed while nobody was attached: its events are all recovered, exit included.
    const finished = await second.attach("done");
    assert.deepEqual(await finished.wait(), { exitCode: 3, signal: null });
    const replay = [];
    for await (const event of finished.events()) replay.push(event);
    const decoder = new TextDecoder();
    assert.equal(
      replay.filter((e) => e.type === "output").map((e) =>
        decoder.decode((e as { chunk: Uint8Array }).chunk)
      ).join(""),
      "finished\n",
    );

    // `live` is still running: history first, then new output, then its end.
    const attached = await second.attach("live");
    let seen = "";
    let wake = () => {};
    attached.listen((event) => {
      if (event.type === "output") seen += decoder.decode(event.chunk);
      wake();
    });
    assert.equal(seen, "before\n");
    const echoed = new Promise<void>((resolve) => wake = () => seen.includes("after") && resolve());
    await attached.write("after\n");
    await echoed;
    await attached.closeStdin();
    assert.deepEqual(await attached.wait(), { exitCode: 0, signal: null });
    assert.equal(seen, "before\nafter\nbye\n");
    await second.close();
  } finally {
    await executor.stop();
  }
});

Deno.test("client: with binaryOutput off, output arrives as base64 JSON, intact", async () => {
  const executor = await startExecutor([]);
  try {
    const client = await connectExecutor(executor.url, { binaryOutput: false });
    const proc = await client.start({
      processId: "p",
      argv: ["sh", "-c", "head -c 5000000 /dev/urandom | tee /dev/stderr | md5sum"],
      env: ENV,
    });
    const { createHash } = await import("node:crypto");
    const hash = createHash("md5");
    let printed = "";
    for await (const event of proc.events()) {
      if (event.type === "output" && event.stream === "stderr") hash.update(event.chunk);
      if (event.type === "output" && event.stream === "stdout") {
        printed += new TextDecoder().decode(event.chunk);
      }
    }
    assert.equal(printed.split(" ")[0], hash.digest("hex"));
    await client.close();
  } finally {
    await executor.stop();
  }
});

for (const binaryWrites of [true, false]) {
  Deno.test(`client: with binaryWrites ${binaryWrites ? "on" : "off"}, stdin arrives intact (write, send, closeStdin)`, async () => {
    const executor = await startExecutor([]);
    try {
      const client = await connectExecutor(executor.url, { binaryWrites });
      const proc = await client.start({
        processId: "p",
        argv: ["md5sum"],
        env: ENV,
        pipeStdin: true,
      });
      const { createHash } = await import("node:crypto");
      const hash = createHash("md5");
      const data = new Uint8Array(3 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 65536) {
        crypto.getRandomValues(data.subarray(i, i + 65536));
      }
      for (let at = 0, n = 0; at < data.length; n++) {
        const piece = data.subarray(at, at + (n % 2 ? 100 : 300_000));
        hash.update(piece);
        if (n % 3 === 0) proc.send(piece);
        else assert.equal(await proc.write(piece), "accepted");
        at += piece.byteLength;
      }
      assert.equal(await proc.closeStdin(), "accepted");
      let printed = "";
      for await (const event of proc.events()) {
        if (event.type === "output") printed += new TextDecoder().decode(event.chunk);
      }
      assert.equal(printed.split(" ")[0], hash.digest("hex"));
      await client.close();
    } finally {
      await executor.stop();
    }
  });
}

Deno.test("client: binary frames keep process ids exact (a leading U+FEFF, a lone surrogate)", async () => {
  const executor = await startExecutor([]);
  try {
    const client = await connectExecutor(executor.url);
    const ids = ["a", "\uFEFFa", "x\uD800"];
    const procs = await Promise.all(
      ids.map((processId) => client.start({ processId, argv: ["cat"], env: ENV, pipeStdin: true })),
    );
    for (const [i, proc] of procs.entries()) {
      assert.equal(await proc.write(`to ${i}\n`), "accepted");
      assert.equal(await proc.closeStdin(), "accepted");
    }
    for (const [i, proc] of procs.entries()) {
      let text = "";
      for await (const event of proc.events()) {
        if (event.type === "output") text += new TextDecoder().decode(event.chunk);
      }
      assert.equal(text, `to ${i}\n`, `output of process ${JSON.stringify(ids[i])}`);
    }
    await client.close();
  } finally {
    await executor.stop();
  }
});

Deno.test("binary write frame: a process id over 65535 UTF-8 bytes is refused, not cut", async () => {
  const { encodeWriteFrame, decodeWriteFrame } = await import("../src/protocol/binary_write.ts");
  assert.throws(() => encodeWriteFrame(new Uint8Array(65536), new Uint8Array(1)), RangeError);
  const id = new TextEncoder().encode("\uFEFFp");
  const frame = decodeWriteFrame(encodeWriteFrame(id, new Uint8Array([7]), { requestId: 3 }))!;
  assert.deepEqual({ ...frame, data: [...frame.data] }, {
    processId: "\uFEFFp",
    requestId: 3,
    closeStdin: false,
    writeId: null,
    data: [7],
  });
});

Deno.test("local backend: close() while a start is in flight rejects the start", async () => {
  const { LocalExecBackend } = await import("../mod.ts");
  const backend = new LocalExecBackend({ warmWorkers: 0 });
  const starting = backend.start({ processId: "late", argv: ["sleep", "30"], env: ENV });
  const outcome = starting.then((p) => p.wait().then(() => "closed"), (e: Error) => e.message);
  await backend.close();
  const result = await outcome;
  assert.ok(result === "closed" || /clos/.test(result), result);
});

Deno.test("process events: everything before the first subscriber is kept for it (up to 16 MiB)", async () => {
  const { ProcessEvents } = await import("../src/exec/process_events.ts");
  const events = new ProcessEvents();
  const MiB = new Uint8Array(1024 * 1024);
  for (let seq = 1; seq <= 4; seq++) {
    events.accept({ type: "output", seq, stream: "stdout", chunk: MiB });
  }
  events.accept({ type: "exited", seq: 5, exitCode: 0, signal: null });
  events.accept({ type: "closed", seq: 6 });
  const first = await collect(events.subscribe());
  assert.deepEqual(first.map((e) => "seq" in e ? e.seq : e.type), [1, 2, 3, 4, 5, 6]);
});

Deno.test("client: fetch through the executor: a buffered body, a streamed one, and a cancelled one stops on the server", async () => {
  let cancelled = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/text") return new Response("plain", { headers: { "x-kind": "text" } });
    if (path === "/empty") return new Response(null, { status: 204 });
    return new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("first"));
        },
        cancel() {
          cancelled.resolve();
        },
      }),
    );
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const executor = await startExecutor([]);
  const client = await connectExecutor(executor.url);
  try {
    const text = await client.fetch(`${base}/text`);
    assert.equal(text.status, 200);
    assert.equal(text.headers.get("x-kind"), "text");
    assert.equal(await text.text(), "plain");
    const empty = await client.fetch(`${base}/empty`, { method: "POST", body: "x" });
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
    const endless = await client.fetch(`${base}/forever`);
    const reader = endless.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "first");
    await reader.cancel();
    // The executor stopped the request it made: the server saw its body cancelled.
    await cancelled.promise;
    cancelled = Promise.withResolvers<void>();
    await assert.rejects(client.fetch("http://127.0.0.1:1/"), /through the executor failed/);
  } finally {
    await client.close();
    await executor.stop();
    await server.shutdown();
  }
});

Deno.test("client: every write carries a writeId of its own, and paths go out as file:// URIs", async () => {
  const writes: Json[] = [];
  let startParams: Json = null;
  const fake = await fakeExecutor((message, socket) => {
    if (message.method === "process/start") {
      startParams = message.params;
      socket.send(
        JSON.stringify({ id: message.id, result: { processId: message.params.processId } }),
      );
    } else if (message.method === "process/write") {
      writes.push(message.params);
      socket.send(JSON.stringify({ id: message.id, result: { status: "accepted" } }));
    }
  }, { environmentInfo: { shell: { name: "sh", path: "/bin/sh" } } });
  // The fake executor speaks the reference's current protocol: JSON writes, answered one by one.
  const client = await connectExecutor(fake.url, { token: "t" });
  try {
    const proc = await client.start({ processId: "p", argv: ["cat"], cwd: "/tmp/a b" });
    assert.equal(startParams.cwd, "file:///tmp/a%20b");
    await proc.write("one");
    await proc.write("two");
    proc.send("three");
    await proc.closeStdin();
    while (writes.length < 4) await new Promise((resolve) => setTimeout(resolve, 5));
    const ids = writes.map((w) => w.writeId);
    assert.equal(new Set(ids).size, 4, JSON.stringify(ids));
    assert.ok(ids.every((id) => typeof id === "string" && id.length > 0));
    assert.equal(writes[3].closeStdin, true);
  } finally {
    await client.close();
    await fake.close();
  }
});

Deno.test("binary write frame: a writeId travels with the bytes; a malformed one is refused", async () => {
  const { encodeWriteFrame, decodeWriteFrame } = await import("../src/protocol/binary_write.ts");
  const encoder = new TextEncoder();
  const frame = encodeWriteFrame(encoder.encode("p"), new Uint8Array([1, 2]), {
    writeId: encoder.encode("w-1"),
    closeStdin: true,
  });
  const decoded = decodeWriteFrame(frame)!;
  assert.equal(decoded.writeId, "w-1");
  assert.equal(decoded.closeStdin, true);
  assert.deepEqual([...decoded.data], [1, 2]);
  assert.throws(() =>
    encodeWriteFrame(encoder.encode("p"), new Uint8Array(), { writeId: new Uint8Array() })
  );
  // The writeId flag with a length past the frame, or of zero: not a frame.
  const truncated = frame.slice(0, 14);
  assert.equal(decodeWriteFrame(truncated), null);
  const zero = frame.slice();
  new DataView(zero.buffer).setUint16(13, 0);
  assert.equal(decodeWriteFrame(zero), null);
});

Deno.test("client: an executor of the April protocol (no environmentInfo) gets native paths, not URIs", async () => {
  const seen: Json[] = [];
  const fake = await fakeExecutor((message, socket) => {
    seen.push(message);
    const result = message.method === "fs/readFile"
      ? { dataBase64: btoa("x") }
      : { processId: message.params.processId };
    socket.send(JSON.stringify({ id: message.id, result }));
  });
  const client = await connectExecutor(fake.url);
  try {
    assert.equal(client.environmentInfo, null);
    await client.fs.readFile("/tmp/a b");
    await client.start({ processId: "p", argv: ["x"], cwd: "/tmp/a b" });
    assert.deepEqual(seen.map((m) => m.params.path ?? m.params.cwd), ["/tmp/a b", "/tmp/a b"]);
  } finally {
    await client.close();
    await fake.close();
  }
});
