import assert from "node:assert/strict";
import {
  connectWebSocket,
  type WebSocketClient,
  type WebSocketCloseEvent,
  WebSocketHandshakeError,
} from "../src/transport/websocket_client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A `Deno.serve` WebSocket server on 127.0.0.1; `closed` settles when the server-side socket closes. */
interface TestServer {
  url: string;
  closed: Promise<CloseEvent>;
  /** The upgrade requests seen, copied (a Request cannot be read after the handler returns). */
  requests: { url: string; headers: Headers }[];
  shutdown(): Promise<void>;
}

function startServer(
  onSocket: (socket: WebSocket) => void,
  options: {
    /** Answer without upgrading, e.g. with a 401. */
    respond?: (request: Request) => Response | undefined;
    hostname?: string;
    cert?: string;
    key?: string;
  } = {},
): TestServer {
  const closed = Promise.withResolvers<CloseEvent>();
  const requests: { url: string; headers: Headers }[] = [];
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: 0,
    onListen() {},
    ...(options.cert ? { cert: options.cert, key: options.key } : {}),
  }, (request) => {
    requests.push({ url: request.url, headers: new Headers(request.headers) });
    const early = options.respond?.(request);
    if (early) return early;
    const offered = request.headers.get("sec-websocket-protocol")?.split(",").map((p) => p.trim());
    const protocol = offered?.includes("v2.execbridge") ? "v2.execbridge" : undefined;
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol });
    socket.binaryType = "arraybuffer";
    socket.addEventListener("close", (event) => closed.resolve(event));
    onSocket(socket);
    return response;
  });
  const host = server.addr.hostname.includes(":") ? `[${server.addr.hostname}]` : "127.0.0.1";
  const scheme = options.cert ? "wss" : "ws";
  return {
    url: `${scheme}://${options.cert ? "localhost" : host}:${server.addr.port}/ws`,
    closed: closed.promise,
    requests,
    shutdown: () => server.shutdown(),
  };
}

function echo(socket: WebSocket): void {
  socket.onmessage = (event) => socket.send(event.data);
}

/** Collects a client's messages and close events. */
function watch(ws: WebSocketClient) {
  const messages: (string | Uint8Array)[] = [];
  const closes: WebSocketCloseEvent[] = [];
  const closed = Promise.withResolvers<WebSocketCloseEvent>();
  let waiter: { count: number; resolve(): void } | null = null;
  ws.onmessage = (data) => {
    messages.push(data);
    if (waiter && messages.length >= waiter.count) {
      waiter.resolve();
      waiter = null;
    }
  };
  ws.onclose = (event) => {
    closes.push(event);
    closed.resolve(event);
  };
  return {
    messages,
    closes,
    closed: closed.promise,
    /** Resolves once `count` messages arrived in total. */
    waitFor(count: number): Promise<void> {
      if (messages.length >= count) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      waiter = { count, resolve };
      return promise;
    },
  };
}

/** Connects to a fresh echo server, runs `body`, and closes everything. */
async function withEcho(
  body: (ws: WebSocketClient, w: ReturnType<typeof watch>) => Promise<void>,
): Promise<void> {
  const server = startServer(echo);
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  try {
    await body(ws, w);
  } finally {
    await ws.close();
    await server.closed;
    await server.shutdown();
  }
}

Deno.test("text echo, including non-ASCII", async () => {
  await withEcho(async (ws, w) => {
    ws.send("hello");
    ws.send("héllo ✓ 🎉");
    ws.send("");
    await w.waitFor(3);
    assert.deepEqual(w.messages, ["hello", "héllo ✓ 🎉", ""]);
    assert.equal(ws.protocol, "");
  });
});

Deno.test("text where UTF-8 grows the frame header, U+FFFD and a BOM survive", async () => {
  await withEcho(async (ws, w) => {
    const sent = [
      "a".repeat(120) + "ééé", // 120 chars, 126 bytes: 7-bit → 16-bit length
      "a".repeat(65530) + "✓✓✓", // 65533 chars, 65539 bytes: 16-bit → 64-bit length
      "a".repeat(42),
      "\uFFFD is text too",
      "\uFEFFstarts with a BOM",
    ];
    for (const text of sent) ws.send(text);
    await w.waitFor(sent.length);
    assert.deepEqual(w.messages, sent);
  });
});

Deno.test("binary echo across 7-, 16- and 64-bit lengths", async () => {
  await withEcho(async (ws, w) => {
    const sizes = [0, 1, 3, 125, 126, 127, 1000, 65535, 65536, 100_003];
    const sent = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff));
    for (const data of sent) ws.sendBinary(data);
    await w.waitFor(sent.length);
    for (let i = 0; i < sent.length; i++) {
      assert.ok(w.messages[i] instanceof Uint8Array, `message ${i} is binary`);
      assert.deepEqual(w.messages[i], sent[i], `binary message of ${sizes[i]} bytes`);
    }
  });
});

Deno.test("bufferedAmount counts queued bytes and drains to 0", async () => {
  await withEcho(async (ws, w) => {
    assert.equal(ws.bufferedAmount, 0);
    ws.send("x".repeat(1000));
    assert.equal(ws.bufferedAmount, 1000 + 8); // 16-bit length header + mask key
    await w.waitFor(1);
    assert.equal(ws.bufferedAmount, 0);
  });
});

Deno.test("a 5 MiB text message arrives intact both ways", async () => {
  const big = "abcdefghijklmnopqrstuvwxyz0123456789-é✓🎉".repeat(5 * 1024 * 1024 / 45);
  const server = startServer((socket) => {
    socket.onmessage = (event) => {
      socket.send(event.data === big ? `ok:${big}` : `mismatch:${String(event.data).length}`);
    };
  });
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  ws.send(big);
  await w.waitFor(1);
  const reply = w.messages[0] as string;
  assert.ok(reply.startsWith("ok:"), reply.slice(0, 40));
  assert.equal(reply.length, big.length + 3);
  assert.ok(reply === `ok:${big}`, "the reply is not the message that was sent");
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("10,000 small messages arrive in order", async () => {
  await withEcho(async (ws, w) => {
    const count = 10_000;
    for (let i = 0; i < count; i++) ws.send(String(i));
    await w.waitFor(count);
    for (let i = 0; i < count; i++) assert.equal(w.messages[i], String(i));
  });
});

Deno.test("handshake sends custom headers, path and query", async () => {
  const server = startServer(echo);
  const ws = await connectWebSocket(`${server.url}?token=abc&x=1`, {
    headers: { Authorization: "Bearer s3cret", "X-Client": "execbridge" },
  });
  const request = server.requests[0];
  assert.equal(request.headers.get("authorization"), "Bearer s3cret");
  assert.equal(request.headers.get("x-client"), "execbridge");
  const url = new URL(request.url);
  assert.equal(url.pathname, "/ws");
  assert.equal(url.search, "?token=abc&x=1");
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("subprotocol negotiation", async () => {
  const server = startServer(echo);
  const ws = await connectWebSocket(server.url, { protocols: ["v1.execbridge", "v2.execbridge"] });
  assert.equal(ws.protocol, "v2.execbridge");
  assert.equal(
    server.requests[0].headers.get("sec-websocket-protocol"),
    "v1.execbridge, v2.execbridge",
  );
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("a 401 answer rejects with WebSocketHandshakeError status 401", async () => {
  const server = startServer(echo, {
    respond: () => new Response("no token", { status: 401 }),
  });
  await assert.rejects(connectWebSocket(server.url), (err: unknown) => {
    assert.ok(err instanceof WebSocketHandshakeError);
    assert.equal(err.status, 401);
    assert.equal(
      err.message,
      `WebSocket handshake with ${server.url} failed: HTTP 401 Unauthorized`,
    );
    return true;
  });
  await server.shutdown();
});

Deno.test("server close: onclose runs once with the server's code", async () => {
  const server = startServer((socket) => {
    socket.onopen = () => socket.close(4001, "bye");
  });
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  const event = await w.closed;
  assert.deepEqual(event, { code: 4001, reason: "bye", wasClean: true });
  assert.equal((await server.closed).code, 4001);
  ws.send("ignored after close"); // a no-op, never throws
  await ws.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(w.closes.length, 1);
  await server.shutdown();
});

Deno.test("client close: the server sees the code; close() is idempotent", async () => {
  const server = startServer(echo);
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  const first = ws.close(4000, "done");
  const second = ws.close(1000);
  ws.send("ignored");
  ws.sendBinary(new Uint8Array(3));
  await Promise.all([first, second]);
  assert.equal(w.closes.length, 1);
  assert.deepEqual(w.closes[0], { code: 4000, reason: "done", wasClean: true });
  const serverEvent = await server.closed;
  assert.equal(serverEvent.code, 4000);
  assert.equal(serverEvent.reason, "done");
  await ws.close();
  await assert.rejects(connectWebSocket("http://127.0.0.1:1/"), TypeError);
  await server.shutdown();
});

Deno.test("close() rejects an invalid code", async () => {
  await withEcho(async (ws) => {
    await assert.rejects(ws.close(1006), RangeError);
    await assert.rejects(ws.close(1000, "x".repeat(124)), RangeError);
  });
});

Deno.test("a message over maxMessageBytes closes with 1009", async () => {
  const server = startServer((socket) => {
    socket.onopen = () => socket.send("x".repeat(2000));
  });
  const ws = await connectWebSocket(server.url, { maxMessageBytes: 1024 });
  const w = watch(ws);
  const event = await w.closed;
  assert.equal(event.code, 1009);
  assert.equal(event.wasClean, false);
  assert.equal(w.messages.length, 0);
  assert.equal((await server.closed).code, 1009);
  await server.shutdown();
});

Deno.test("connecting to a closed port rejects with a clear error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  await assert.rejects(connectWebSocket(`ws://127.0.0.1:${port}/`), (err: unknown) => {
    assert.ok(err instanceof WebSocketHandshakeError);
    assert.equal(err.status, null);
    assert.match(
      err.message,
      new RegExp(`^WebSocket connection to ws://127\\.0\\.0\\.1:${port}/ failed`),
    );
    assert.match(err.message, /refused/i);
    return true;
  });
});

Deno.test("frames the server sends on open are received", async () => {
  const server = startServer((socket) => {
    socket.onopen = () => {
      socket.send("first");
      socket.send(new Uint8Array([1, 2, 3]));
      socket.send("third");
    };
  });
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  await w.waitFor(3);
  assert.deepEqual(w.messages, ["first", new Uint8Array([1, 2, 3]), "third"]);
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("two back-to-back small sends arrive well under 20 ms apart (TCP_NODELAY)", async () => {
  const gaps: number[] = [];
  let first = 0;
  const done = Promise.withResolvers<void>();
  const server = startServer((socket) => {
    socket.onmessage = (event) => {
      if (event.data === "a") {
        first = performance.now();
      } else if (event.data === "b") {
        gaps.push(performance.now() - first);
        socket.send("ack");
      } else if (event.data === "c") {
        done.resolve();
      }
    };
  });
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  for (let i = 0; i < 20; i++) {
    ws.send("a");
    ws.send("b");
    await w.waitFor(i + 1);
  }
  // The client coalesces same-tick sends into one write, so the loop above would pass even
  // with Nagle on. Here the writes are forced apart: "b" is written while "a" may still be
  // unacknowledged, which is what Nagle + delayed ACK stall (~40 ms) without TCP_NODELAY.
  for (let i = 0; i < 20; i++) {
    ws.send("a");
    await new Promise((resolve) => setTimeout(resolve, 0));
    ws.send("b");
    await w.waitFor(21 + i);
  }
  ws.send("c");
  await done.promise;
  assert.equal(gaps.length, 40);
  const max = Math.max(...gaps);
  assert.ok(max < 20, `max gap between "a" and "b" was ${max.toFixed(2)} ms`);
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("IPv6 literal hosts work", {
  ignore: !canListen("::1"),
}, async () => {
  const server = startServer(echo, { hostname: "::1" });
  assert.match(server.url, /^ws:\/\/\[::1\]:\d+\/ws$/);
  const ws = await connectWebSocket(server.url);
  const w = watch(ws);
  ws.send("v6");
  await w.waitFor(1);
  assert.equal(w.messages[0], "v6");
  assert.match(server.requests[0].headers.get("host")!, /^\[::1\]:\d+$/);
  await ws.close();
  await server.closed;
  await server.shutdown();
});

Deno.test("wss:// with caCerts", async () => {
  const server = startServer(echo, { cert: TEST_CERT, key: TEST_KEY });
  await assert.rejects(connectWebSocket(server.url), WebSocketHandshakeError);
  const ws = await connectWebSocket(server.url, { caCerts: [TEST_CERT] });
  const w = watch(ws);
  ws.send("secure");
  ws.sendBinary(new Uint8Array(70_000).fill(7));
  await w.waitFor(2);
  assert.equal(w.messages[0], "secure");
  assert.deepEqual(w.messages[1], new Uint8Array(70_000).fill(7));
  await ws.close();
  await server.closed;
  await server.shutdown();
});

function canListen(hostname: string): boolean {
  try {
    Deno.listen({ hostname, port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

// ---- A raw TCP server, for frames Deno's server never sends. ----

/** Accepts one connection, answers the upgrade, then hands the socket to `body`. */
async function withRawServer(
  body: (conn: Deno.Conn, accept: string) => Promise<void>,
  client: (url: string) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serverSide = (async () => {
    const conn = await listener.accept();
    try {
      const head = await readUntil(conn, "\r\n\r\n");
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1];
      const digest = await crypto.subtle.digest(
        "SHA-1",
        encoder.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
      );
      await body(conn, btoa(String.fromCharCode(...new Uint8Array(digest))));
    } finally {
      conn.close();
    }
  })();
  try {
    await client(`ws://127.0.0.1:${listener.addr.port}/`);
  } finally {
    await serverSide;
    listener.close();
  }
}

function upgradeResponse(accept: string): Uint8Array {
  return encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
}

async function readUntil(conn: Deno.Conn, marker: string): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes(marker)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("EOF before " + JSON.stringify(marker));
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

/** An unmasked (server) frame. */
function frame(
  opcode: number,
  payload: Uint8Array | string,
  fin = true,
  masked = false,
): Uint8Array {
  const data = typeof payload === "string" ? encoder.encode(payload) : payload;
  const header = [(fin ? 0x80 : 0) | opcode];
  if (data.length < 126) header.push((masked ? 0x80 : 0) | data.length);
  else header.push((masked ? 0x80 : 0) | 126, data.length >> 8, data.length & 0xff);
  if (masked) header.push(0, 0, 0, 0);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** Reads one masked client frame. */
async function readClientFrame(conn: Deno.Conn): Promise<{ opcode: number; payload: Uint8Array }> {
  const read = async (n: number) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n;) {
      const got = await conn.read(out.subarray(off));
      if (got === null) throw new Error("EOF while reading a client frame");
      off += got;
    }
    return out;
  };
  const [b0, b1] = await read(2);
  assert.equal(b1 & 0x80, 0x80, "client frames must be masked");
  let len = b1 & 0x7f;
  if (len === 126) {
    const ext = await read(2);
    len = (ext[0] << 8) | ext[1];
  }
  const mask = await read(4);
  const payload = await read(len);
  for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
  return { opcode: b0 & 0x0f, payload };
}

Deno.test("raw: frames in the same packet as the 101, fragments, ping/pong", async () => {
  await withRawServer(async (conn, accept) => {
    const parts = [
      upgradeResponse(accept),
      frame(1, "early"),
      frame(1, "frag-", false),
      frame(9, "are you there"),
      frame(0, "men", false),
      frame(0, "ted ✓"),
      frame(2, new Uint8Array([9, 8]), false),
      frame(0, new Uint8Array([7])),
    ];
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
    await conn.write(all);
    const pong = await readClientFrame(conn);
    assert.equal(pong.opcode, 10);
    assert.equal(decoder.decode(pong.payload), "are you there");
    const text = await readClientFrame(conn);
    assert.equal(decoder.decode(text.payload), "got 3");
    await conn.write(frame(8, new Uint8Array([0x03, 0xe8]))); // 1000
    const close = await readClientFrame(conn);
    assert.equal(close.opcode, 8);
    assert.deepEqual(close.payload, new Uint8Array([0x03, 0xe8]));
  }, async (url) => {
    const ws = await connectWebSocket(url);
    const w = watch(ws);
    await w.waitFor(3);
    assert.deepEqual(w.messages, ["early", "frag-mented ✓", new Uint8Array([9, 8, 7])]);
    ws.send("got 3");
    const event = await w.closed;
    assert.deepEqual(event, { code: 1000, reason: "", wasClean: true });
  });
});

for (
  const [name, bad, code] of [
    ["a masked server frame", frame(1, "hi", true, true), 1002],
    ["invalid UTF-8", frame(1, new Uint8Array([0xc3, 0x28])), 1007],
    ["reserved bits", Uint8Array.of(0xc1, 0), 1002],
    ["an unknown opcode", frame(3, ""), 1002],
    ["a stray continuation", frame(0, "x"), 1002],
  ] as const
) {
  Deno.test(`raw: ${name} closes with ${code}`, async () => {
    await withRawServer(async (conn, accept) => {
      await conn.write(upgradeResponse(accept));
      await conn.write(bad);
      const close = await readClientFrame(conn);
      assert.equal(close.opcode, 8);
      assert.equal((close.payload[0] << 8) | close.payload[1], code);
    }, async (url) => {
      const ws = await connectWebSocket(url);
      const w = watch(ws);
      const event = await w.closed;
      assert.equal(event.code, code);
      assert.equal(w.messages.length, 0);
    });
  });
}

Deno.test("raw: EOF without a close frame gives onclose 1006", async () => {
  await withRawServer(async (conn, accept) => {
    await conn.write(upgradeResponse(accept));
  }, async (url) => {
    const ws = await connectWebSocket(url);
    const event = await watch(ws).closed;
    assert.deepEqual(event, { code: 1006, reason: "", wasClean: false });
  });
});

Deno.test("raw: close() gives up after 1 s when the server never answers", async () => {
  await withRawServer(async (conn, accept) => {
    await conn.write(upgradeResponse(accept));
    assert.equal((await readClientFrame(conn)).opcode, 8);
    await readUntil(conn, "never").catch(() => {}); // ends when the client gives up
  }, async (url) => {
    const ws = await connectWebSocket(url);
    const w = watch(ws);
    const t0 = performance.now();
    await ws.close();
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 900 && elapsed < 1500, `close() took ${elapsed.toFixed(0)} ms`);
    assert.deepEqual(w.closes, [{ code: 1006, reason: "", wasClean: false }]);
  });
});

Deno.test("raw: a wrong Sec-WebSocket-Accept is rejected", async () => {
  await withRawServer(async (conn) => {
    await conn.write(upgradeResponse("bm90IHRoZSByaWdodCBrZXk="));
  }, async (url) => {
    await assert.rejects(connectWebSocket(url), /Sec-WebSocket-Accept does not match/);
  });
});

Deno.test("raw: connectTimeoutMs and signal abort a silent server", async () => {
  const silent = async (conn: Deno.Conn) => {
    await readUntil(conn, "never").catch(() => {}); // ends when the client gives up
  };
  await withRawServer(silent, async (url) => {
    await assert.rejects(connectWebSocket(url, { connectTimeoutMs: 50 }), (err: unknown) => {
      assert.ok(err instanceof WebSocketHandshakeError);
      assert.match(err.message, /failed: timed out after 50 ms/);
      return true;
    });
  });
  await withRawServer(silent, async (url) => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error("stop")), 30);
    await assert.rejects(connectWebSocket(url, { signal: ac.signal }), /^Error: stop$/);
    clearTimeout(timer);
  });
});

const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmDCCAT6gAwIBAgIUW5mw2ZzOXlVG1LbWc3ZN+iO9sZQwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTA5MzczOFoYDzIxMjYxMTAx
MDkzNzM4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATJfJ1O0qorsrw+hAuTSB8aGC+lIjfBsa/wAHJnW2POoJ5D9NNsej5s
g2rHxIiUtZbC+Q2B1vDu96uFssqZkpQdo2wwajAdBgNVHQ4EFgQUWqUGL4Ofex0t
uOoPuFJxdykS+04wHwYDVR0jBBgwFoAUWqUGL4Ofex0tuOoPuFJxdykS+04wGgYD
VR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0E
AwIDSAAwRQIhAMlKgY3bfRKC7YaNmAGaFWzbucknAPp7WzggWg7G84ZUAiBkfE6b
9GDED7UAs62JIFfP68ixx/UuPsDvcf5gLSbxwQ==
-----END CERTIFICATE-----
`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfQZDR5vIdgQ+mlz2
0gl8eVIM/ehtOjx+Q3/Cj0JKxKOhRANCAATJfJ1O0qorsrw+hAuTSB8aGC+lIjfB
sa/wAHJnW2POoJ5D9NNsej5sg2rHxIiUtZbC+Q2B1vDu96uFssqZkpQd
-----END PRIVATE KEY-----
`;
