import assert from "node:assert/strict";
import { startFaultProxy } from "./support/fault_proxy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One connection a target server accepted. */
interface TargetConn {
  /** Everything received so far. */
  received(): string;
  /** Writes from the target's side. */
  send(text: string): Promise<void>;
  /** Settles with everything received once the connection ended (EOF, reset, or closed). */
  ended: Promise<string>;
}

/** A TCP server on 127.0.0.1 that records (and optionally echoes) what it receives. */
interface TargetServer {
  port: number;
  /** The connections accepted so far, in order. */
  conns: TargetConn[];
  /** Resolves with the `index`-th accepted connection (0-based). */
  connection(index: number): Promise<TargetConn>;
  close(): Promise<void>;
}

function startTarget(options: { echo: boolean }): TargetServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: TargetConn[] = [];
  const open = new Set<Deno.TcpConn>();
  const tasks: Promise<void>[] = [];
  const waiters: { index: number; resolve(conn: TargetConn): void }[] = [];

  const serveConn = async (
    conn: Deno.TcpConn,
    ended: PromiseWithResolvers<string>,
  ): Promise<void> => {
    let text = "";
    const buffer = new Uint8Array(64 * 1024);
    const record: TargetConn = {
      received: () => text,
      send: (data) => writeAll(conn, encoder.encode(data)),
      ended: ended.promise,
    };
    conns.push(record);
    for (const waiter of waiters.filter((w) => w.index < conns.length)) {
      waiter.resolve(conns[waiter.index]);
    }
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += decoder.decode(buffer.subarray(0, n));
        if (options.echo) await writeAll(conn, buffer.slice(0, n));
      }
    } catch {
      // reset by the peer, or closed by close()
    }
    if (open.delete(conn)) conn.close();
    ended.resolve(text);
  };

  const accepting = (async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      open.add(conn);
      tasks.push(serveConn(conn, Promise.withResolvers<string>()));
    }
  })();

  return {
    port: listener.addr.port,
    conns,
    connection(index) {
      if (index < conns.length) return Promise.resolve(conns[index]);
      const { promise, resolve } = Promise.withResolvers<TargetConn>();
      waiters.push({ index, resolve });
      return promise;
    },
    async close() {
      listener.close();
      await accepting;
      for (const conn of open) conn.close();
      open.clear();
      await Promise.all(tasks);
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await conn.write(data.subarray(offset));
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

/** Reads exactly `length` bytes as text; throws on an early EOF. */
async function readText(conn: Deno.Conn, length: number): Promise<string> {
  const out = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const n = await conn.read(out.subarray(offset));
    if (n === null) throw new Error(`EOF after ${offset} of ${length} bytes`);
    offset += n;
  }
  return decoder.decode(out);
}

/** Reads until the connection ends: what arrived, and whether it ended in EOF or an error. */
async function readToEnd(conn: Deno.Conn): Promise<{ text: string; end: "eof" | string }> {
  let text = "";
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return { text, end: "eof" };
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch (error) {
    return { text, end: (error as Error).name };
  }
}

async function echoOnce(conn: Deno.Conn, text: string): Promise<string> {
  await writeAll(conn, encoder.encode(text));
  return await readText(conn, encoder.encode(text).byteLength);
}

Deno.test("fault proxy: forwards both ways, and the EOF of each side", async () => {
  const target = startTarget({ echo: true });
  const proxy = await startFaultProxy({ target: { hostname: "127.0.0.1", port: target.port } });
  assert.equal(proxy.hostname, "127.0.0.1");
  assert.equal(proxy.url(), `ws://127.0.0.1:${proxy.port}/`);
  assert.equal(proxy.url("http", "health"), `http://127.0.0.1:${proxy.port}/health`);
  assert.equal(proxy.mode, "forward");

  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "hello"), "hello");
  const big = "x".repeat(3 * 1024 * 1024 + 17);
  const [, echoed] = await Promise.all([
    writeAll(client, encoder.encode(big)),
    readText(client, big.length),
  ]);
  assert.equal(echoed, big);
  assert.equal(proxy.connections, 1);

  // A half-close travels through: the target sees EOF and closes, the client sees EOF.
  await client.closeWrite();
  const targetConn = await target.connection(0);
  assert.equal(await targetConn.ended, "hello" + big);
  assert.deepEqual(await readToEnd(client), { text: "", end: "eof" });
  client.close();

  await proxy.close();
  assert.equal(proxy.connections, 0);
  await target.close();
});

Deno.test("fault proxy: blackhole drops bytes both ways, restore resets the dead connection", async () => {
  const target = startTarget({ echo: true });
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
  });
  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "before"), "before");
  const targetConn = await target.connection(0);

  proxy.blackhole();
  assert.equal(proxy.mode, "blackhole");
  const clientEnd = readToEnd(client);
  await writeAll(client, encoder.encode("lost-upstream"));
  await targetConn.send("lost-downstream");

  // A new connection is accepted but never reaches the target.
  const late = await connect(proxy.port);
  await proxy.waitForAccepted(2);
  await writeAll(late, encoder.encode("lost-too"));
  const lateEnd = readToEnd(late);

  await proxy.restore();
  assert.equal(proxy.mode, "forward");
  const fresh = await connect(proxy.port);
  assert.equal(await echoOnce(fresh, "marker"), "marker");

  // The marker came through a new connection, the second the target saw; the blackholed one was
  // reset on restore, and neither of its sides got a byte sent during the blackhole.
  assert.equal(target.conns.length, 2);
  assert.equal(await targetConn.ended, "before");
  const seen = await clientEnd;
  assert.equal(seen.text, "");
  assert.equal((await lateEnd).text, "");
  assert.equal((await target.connection(1)).received(), "marker");

  for (const conn of [client, late, fresh]) conn.close();
  await proxy.close();
  await target.close();
});

Deno.test("fault proxy: blackhole does not pass a FIN on", async () => {
  const target = startTarget({ echo: true });
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
  });
  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "a"), "a");
  const targetConn = await target.connection(0);
  proxy.blackhole();
  await client.closeWrite();
  // The target would end its side at EOF; it must not see one. A reset (on restore) ends it.
  let ended = false;
  targetConn.ended.then(() => ended = true);
  const marker = await connect(proxy.port);
  await proxy.waitForAccepted(2);
  assert.equal(ended, false);
  assert.equal(target.conns.length, 1);
  await proxy.restore();
  assert.equal(await targetConn.ended, "a");
  client.close();
  marker.close();
  await proxy.close();
  await target.close();
});

Deno.test("fault proxy: reset ends current connections and keeps accepting", async () => {
  const target = startTarget({ echo: true });
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
  });
  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "one"), "one");
  const targetConn = await target.connection(0);

  proxy.reset();
  const end = await readToEnd(client);
  assert.equal(end.text, "");
  assert.ok(end.end === "eof" || end.end === "ConnectionReset", end.end);
  assert.equal(await targetConn.ended, "one");
  assert.equal(proxy.mode, "forward");

  const again = await connect(proxy.port);
  assert.equal(await echoOnce(again, "two"), "two");
  client.close();
  again.close();
  await proxy.close();
  await target.close();
});

Deno.test("fault proxy: refuse refuses new connections, resets current ones, restore listens again", async () => {
  const target = startTarget({ echo: true });
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
  });
  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "up"), "up");

  await proxy.refuse();
  assert.equal(proxy.mode, "refuse");
  await assert.rejects(connect(proxy.port), Deno.errors.ConnectionRefused);
  assert.equal((await readToEnd(client)).text, "");
  assert.equal(await (await target.connection(0)).ended, "up");

  assert.throws(() => proxy.blackhole(), /restore/);
  const squatter = Deno.listen({ hostname: "127.0.0.1", port: proxy.port });
  await assert.rejects(proxy.restore(), Deno.errors.AddrInUse);
  assert.equal(proxy.mode, "refuse");
  squatter.close();

  const port = proxy.port;
  await proxy.restore();
  assert.equal(proxy.mode, "forward");
  assert.equal(proxy.port, port);
  const again = await connect(proxy.port);
  assert.equal(await echoOnce(again, "back"), "back");
  assert.equal(proxy.accepted, 2);
  client.close();
  again.close();
  await proxy.close();
  await target.close();
});

Deno.test("fault proxy: a target that is gone ends the client's connection", async () => {
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = gone.addr.port;
  gone.close();
  await using proxy = await startFaultProxy({ target: { hostname: "127.0.0.1", port } });
  const client = await connect(proxy.port);
  const end = await readToEnd(client);
  assert.equal(end.text, "");
  client.close();
});

Deno.test("fault proxy: delay adds latency each way and keeps the order", async () => {
  const target = startTarget({ echo: true });
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
  });
  const client = await connect(proxy.port);
  assert.equal(await echoOnce(client, "warm"), "warm");

  const ms = 60;
  proxy.delay(ms);
  assert.equal(proxy.delayMs, ms);
  const started = performance.now();
  assert.equal(await echoOnce(client, "slow"), "slow");
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 2 * ms, `round trip took ${elapsed} ms, expected >= ${2 * ms}`);

  const parts = Array.from({ length: 20 }, (_, i) => `<${i}>`);
  const reading = readText(client, parts.join("").length);
  for (const part of parts) await writeAll(client, encoder.encode(part));
  assert.equal(await reading, parts.join(""));

  await proxy.restore();
  assert.equal(proxy.delayMs, 0);
  assert.throws(() => proxy.delay(-1), RangeError);
  client.close();
  await proxy.close();
  await target.close();
});

Deno.test("fault proxy: waitForAccepted resolves on the n-th accepted connection", async () => {
  const target = startTarget({ echo: true });
  const proxy = await startFaultProxy({ target: { hostname: "127.0.0.1", port: target.port } });
  await proxy.waitForAccepted(0);
  const second = proxy.waitForAccepted(2);
  const a = await connect(proxy.port);
  await proxy.waitForAccepted(1);
  assert.equal(proxy.accepted, 1);
  const b = await connect(proxy.port);
  await second;
  assert.equal(proxy.accepted, 2);
  assert.equal(await echoOnce(a, "a"), "a");
  assert.equal(await echoOnce(b, "b"), "b");
  assert.equal(proxy.connections, 2);

  const never = proxy.waitForAccepted(3);
  await proxy.close();
  await assert.rejects(never, /closed/);
  await assert.rejects(proxy.waitForAccepted(3), /closed/);
  await proxy.waitForAccepted(2);
  a.close();
  b.close();
  await target.close();
});

Deno.test("fault proxy: a function target is asked on every connection", async () => {
  const first = startTarget({ echo: true });
  const second = startTarget({ echo: true });
  let current = first;
  await using proxy = await startFaultProxy({
    target: () => ({ hostname: "127.0.0.1", port: current.port }),
  });
  const a = await connect(proxy.port);
  assert.equal(await echoOnce(a, "to-first"), "to-first");
  current = second;
  const b = await connect(proxy.port);
  assert.equal(await echoOnce(b, "to-second"), "to-second");
  assert.equal((await first.connection(0)).received(), "to-first");
  assert.equal((await second.connection(0)).received(), "to-second");
  a.close();
  b.close();
  await proxy.close();
  await first.close();
  await second.close();
});

Deno.test("fault proxy: a new proxy can take over a closed one's port", async () => {
  const target = startTarget({ echo: true });
  const first = await startFaultProxy({ target: { hostname: "127.0.0.1", port: target.port } });
  const client = await connect(first.port);
  assert.equal(await echoOnce(client, "first"), "first");
  await first.close();
  assert.equal((await readToEnd(client)).text, "");
  client.close();

  await using second = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: target.port },
    listenPort: first.port,
  });
  assert.equal(second.port, first.port);
  const again = await connect(second.port);
  assert.equal(await echoOnce(again, "second"), "second");
  again.close();
  await second.close();
  await target.close();
});

/** A `Deno.serve` WebSocket echo server on 127.0.0.1. */
function startWebSocketEcho(): { port: number; closed: Promise<void>; shutdown(): Promise<void> } {
  const closed = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    socket.onclose = () => closed.resolve();
    return response;
  });
  return { port: server.addr.port, closed: closed.promise, shutdown: () => server.shutdown() };
}

/** An open WebSocket client whose messages are queued for `next()`. */
interface OpenWebSocket {
  socket: WebSocket;
  closed: Promise<CloseEvent>;
  /** The next message received (text). */
  next(): Promise<string>;
}

/** Opens a WebSocket and collects its messages and its close event. */
async function openWebSocket(url: string): Promise<OpenWebSocket> {
  const socket = new WebSocket(url);
  const opened = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<CloseEvent>();
  const messages: string[] = [];
  let waiter: PromiseWithResolvers<string> | null = null;
  socket.onopen = () => opened.resolve();
  socket.onerror = () => opened.reject(new Error("websocket error"));
  socket.onclose = (event) => closed.resolve(event);
  socket.onmessage = (event) => {
    if (waiter) {
      waiter.resolve(event.data);
      waiter = null;
    } else {
      messages.push(event.data);
    }
  };
  await opened.promise;
  return {
    socket,
    closed: closed.promise,
    next(): Promise<string> {
      const queued = messages.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      waiter = Promise.withResolvers<string>();
      return waiter.promise;
    },
  };
}

Deno.test("fault proxy: a WebSocket round trip through the proxy", async () => {
  const server = startWebSocketEcho();
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: server.port },
  });
  const ws = await openWebSocket(proxy.url("ws", "/ws"));
  ws.socket.send("ping");
  assert.equal(await ws.next(), "ping");
  ws.socket.send("x".repeat(200_000));
  assert.equal((await ws.next()).length, 200_000);
  ws.socket.close(1000, "done");
  assert.equal((await ws.closed).code, 1000);
  await server.closed;
  await proxy.close();
  await server.shutdown();
});

Deno.test("fault proxy: a reset closes a WebSocket abnormally on both sides", async () => {
  const server = startWebSocketEcho();
  await using proxy = await startFaultProxy({
    target: { hostname: "127.0.0.1", port: server.port },
  });
  const ws = await openWebSocket(proxy.url());
  ws.socket.send("ping");
  assert.equal(await ws.next(), "ping");
  proxy.reset();
  // Deno reports an abnormal closure as code 0 (not 1006), wasClean false.
  const event = await ws.closed;
  assert.equal(event.wasClean, false);
  assert.notEqual(event.code, 1000);
  await server.closed;
  await proxy.close();
  await server.shutdown();
});

Deno.test("fault proxy: close is idempotent and closes everything", async () => {
  const target = startTarget({ echo: true });
  const proxy = await startFaultProxy({ target: { hostname: "127.0.0.1", port: target.port } });
  const live = await connect(proxy.port);
  assert.equal(await echoOnce(live, "live"), "live");
  proxy.blackhole();
  const dead = await connect(proxy.port);
  await proxy.waitForAccepted(2);
  proxy.delay(10_000);

  const closing = proxy.close();
  assert.equal(proxy.close(), closing);
  await closing;
  await proxy.close();
  await proxy[Symbol.asyncDispose]();
  assert.equal(proxy.connections, 0);
  assert.equal((await readToEnd(live)).text, "");
  assert.equal((await readToEnd(dead)).text, "");
  assert.equal(await (await target.connection(0)).ended, "live");
  await assert.rejects(connect(proxy.port), Deno.errors.ConnectionRefused);
  assert.throws(() => proxy.blackhole(), /closed/);
  await assert.rejects(proxy.restore(), /closed/);
  live.close();
  dead.close();
  await target.close();
});
