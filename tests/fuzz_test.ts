/**
 * Hostile input, bounded in count and time, loopback only: 100,000+
 * malformed, truncated, oversized, wrongly typed and out-of-order messages
 * (binary frames and huge base64 chunks included), then a normal client must
 * still be served, memory must stay bounded and no process may be left. And
 * a client that never reads while a process floods stdout must not grow the
 * executor's memory or disturb other connections.
 */

import assert from "node:assert/strict";
import { encodeWriteFrame } from "../src/protocol/binary_write.ts";
import { connectExecutor } from "../mod.ts";
import { connectWebSocket, type WebSocketClient } from "../src/transport/websocket_client.ts";
import { ENV } from "./support/backends.ts";
import { startExecutor } from "./support/executor_process.ts";
import { waitGone } from "./support/processes.ts";
import { frame, portOf, rawUpgrade, writeAll } from "./support/raw_socket.ts";

/** Resident set size of a process, in MiB. */
function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** Pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) children.push(Number(entry.name));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

/** A small deterministic PRNG so failures can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const METHODS = [
  "initialize",
  "initialized",
  "process/start",
  "process/read",
  "process/write",
  "process/terminate",
  "fs/readFile",
  "fs/writeFile",
  "fs/createDirectory",
  "fs/getMetadata",
  "fs/readDirectory",
  "fs/remove",
  "fs/copy",
  "no/such",
  "__proto__",
  "constructor",
  "toString",
];

const WEIRD_VALUES: unknown[] = [
  null,
  true,
  -1,
  1e308,
  -0,
  "",
  "x".repeat(300),
  [],
  [null],
  {},
  { __proto__: { polluted: true } },
  "\u0000\ud800",
  Number.MAX_SAFE_INTEGER + 2,
];

/** One hostile message: text, or bytes for a binary frame. */
function hostileMessage(random: () => number, dir: string): string | Uint8Array {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const id = pick<unknown>([1, "a", null, -5, 2.5, {}, [], undefined, 1e21]);
  const kind = Math.floor(random() * 14);
  switch (kind) {
    case 12: { // a binary write frame with random header fields (a random process id and flags)
      const frame = new Uint8Array(12 + Math.floor(random() * 48));
      crypto.getRandomValues(frame);
      frame[0] = 2;
      frame[1] &= 3; // known flags, so that decoding gets past them
      return frame;
    }
    case 13: { // a well-formed binary write frame, a request or not, to a process that may not exist
      const id = new TextEncoder().encode(pick(["p", "", "ü", "x".repeat(300)]));
      return encodeWriteFrame(id, new Uint8Array(Math.floor(random() * 64)), {
        requestId: random() < 0.5 ? Math.floor(random() * 1e6) : undefined,
        closeStdin: random() < 0.3,
      });
    }
    case 0: { // random bytes, binary frame
      const bytes = new Uint8Array(1 + Math.floor(random() * 64));
      crypto.getRandomValues(bytes);
      return bytes;
    }
    case 1: // truncated JSON
      return JSON.stringify({ id, method: pick(METHODS), params: { processId: "p" } }).slice(
        0,
        Math.floor(random() * 40),
      );
    case 2: // wrong param types
      return JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: pick(METHODS),
        params: {
          processId: pick(WEIRD_VALUES),
          argv: pick(WEIRD_VALUES),
          cwd: pick(WEIRD_VALUES),
          env: pick(WEIRD_VALUES),
          chunk: pick(WEIRD_VALUES),
          path: pick(WEIRD_VALUES),
          afterSeq: pick(WEIRD_VALUES),
          waitMs: pick(WEIRD_VALUES),
        },
      });
    case 3: // valid-looking but out of order / unknown ids
      return JSON.stringify({
        id,
        method: pick(["process/read", "process/write", "process/terminate"]),
        params: { processId: `ghost-${Math.floor(random() * 10)}`, chunk: "", waitMs: 0 },
      });
    case 4: // responses and notifications the executor never asked for
      return JSON.stringify(
        pick([{ id, result: {} }, { id, error: { code: 1, message: "x" } }, {
          method: pick(METHODS),
        }]),
      );
    case 5: // not objects
      return pick(["[]", "[1,2,3]", "null", "42", '"str"', "true", "{}", "", " ", "\u0000"]);
    case 6: // deep nesting
      return "[".repeat(1 + Math.floor(random() * 5000)) + "]".repeat(Math.floor(random() * 10));
    case 7: // fs paths that must stay inside what fs methods allow
      return JSON.stringify({
        id,
        method: pick(["fs/getMetadata", "fs/readDirectory", "fs/readFile"]),
        params: { path: pick([dir, `${dir}/missing`, "relative", "", "/proc/self/../self"]) },
      });
    case 8: // a second initialize / resume attempts with junk ids
      return JSON.stringify({
        id,
        method: "initialize",
        params: { clientName: pick(WEIRD_VALUES), resumeSessionId: pick(WEIRD_VALUES) },
      });
    case 9: // invalid base64
      return JSON.stringify({
        id: 1,
        method: "process/write",
        params: { processId: "p", chunk: "!!!not base64%%%" },
      });
    case 10: // bad UTF-8 in a text-shaped binary frame
      return new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    default: // random printable junk
      return Array.from(
        { length: Math.floor(random() * 100) },
        () => String.fromCharCode(32 + Math.floor(random() * 95)),
      ).join("");
  }
}

async function openClient(url: string): Promise<{ ws: WebSocketClient; received: () => number }> {
  const ws = await connectWebSocket(url, {
    headers: { Authorization: `Bearer ${Deno.env.get("EXECBRIDGE_TOKEN")}` },
  });
  let count = 0;
  ws.onmessage = () => count++;
  return { ws, received: () => count };
}

Deno.test("fuzz: 100,000 hostile messages, then the executor still serves, bounded and clean", async () => {
  const executor = await startExecutor(["--max-frame-bytes", String(16 * 1024 * 1024)]);
  const dir = await Deno.makeTempDir();
  try {
    const baseline = rssMiB(executor.pid);
    const random = prng(20261125);
    const TOTAL = 100_000;
    const CONNECTIONS = 4;
    let sent = 0;
    const clients = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => openClient(executor.url)),
    );
    // Half the connections initialize first so gated methods get past the gate.
    for (const [i, c] of clients.entries()) {
      if (i % 2 === 0) {
        c.ws.send(
          '{"id":0,"method":"initialize","params":{"clientName":"fuzz","binaryWrites":true}}',
        );
        c.ws.send('{"method":"initialized"}');
      }
    }
    const deadline = Date.now() + 120_000;
    while (sent < TOTAL && Date.now() < deadline) {
      for (const c of clients) {
        for (let i = 0; i < 250; i++) {
          const message = hostileMessage(random, dir);
          if (typeof message === "string") c.ws.send(message);
          else c.ws.sendBinary(message);
          sent++;
        }
      }
      // Let the executor answer; keep the outbound queues short.
      while (clients.some((c) => c.ws.bufferedAmount > 1 << 20)) {
        await new Promise((r) => setTimeout(r, 1));
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(sent >= TOTAL, `only ${sent} messages in the time budget`);

    // Huge base64 chunks: 12 MB of valid base64 to an unknown process, and 20 MB over the frame limit.
    const huge = new Uint8Array(9 * 1024 * 1024).toBase64();
    clients[0].ws.send(
      JSON.stringify({ id: 7, method: "process/write", params: { processId: "p", chunk: huge } }),
    );
    const over = await openClient(executor.url);
    const overClosed = new Promise<number>((resolve) => over.ws.onclose = (e) => resolve(e.code));
    over.ws.send("x".repeat(20 * 1024 * 1024));
    assert.equal(await overClosed, 1009);

    // Every connection still answers a ping-like request after the storm.
    for (const c of clients) {
      const before = c.received();
      c.ws.send('{"id":"probe","method":"no/such"}');
      const until = Date.now() + 10_000;
      while (c.received() === before && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(c.received() > before, "a fuzzed connection stopped answering");
    }
    await Promise.all([...clients.map((c) => c.ws.close()), over.ws.close()]);

    // A normal client is served as usual.
    const client = await connectExecutor(executor.url);
    const proc = await client.start({ processId: "after", argv: ["echo", "still here"], env: ENV });
    const { chunks } = await proc.read({ waitMs: 5000 });
    assert.equal(new TextDecoder().decode(chunks[0].chunk), "still here\n");
    assert.equal((await client.fs.getMetadata(dir)).isDirectory, true);
    await proc.wait();
    await client.close();

    const grown = rssMiB(executor.pid) - baseline;
    console.log(
      `fuzz: ${sent} messages; executor RSS ${baseline.toFixed(0)} → +${grown.toFixed(0)} MiB`,
    );
    assert.ok(grown < 256, `executor RSS grew by ${grown.toFixed(0)} MiB (bound 256 MiB)`);
    const leftovers = childrenOf(executor.pid);
    for (const pid of leftovers) assert.ok(await waitGone(pid), `process ${pid} leaked`);
  } finally {
    await executor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("slow reader: a client that never reads cannot grow the executor's memory", async () => {
  const executor = await startExecutor([
    "--max-buffered-bytes",
    String(8 * 1024 * 1024),
    "--stall-timeout-ms",
    "3000",
    "--session-ttl-ms",
    "500",
  ]);
  try {
    const port = portOf(executor.url);
    const { conn, status } = await rawUpgrade(port, {
      Host: `127.0.0.1:${port}`,
      Authorization: `Bearer ${Deno.env.get("EXECBRIDGE_TOKEN")}`,
    });
    assert.equal(status, 101);
    await writeAll(conn, frame('{"id":1,"method":"initialize","params":{"clientName":"slow"}}'));
    await writeAll(conn, frame('{"method":"initialized"}'));
    await writeAll(
      conn,
      frame(JSON.stringify({
        id: 2,
        method: "process/start",
        params: { processId: "flood", argv: ["sh", "-c", "echo $$ >&2; exec yes flood"], env: ENV },
      })),
    );
    // Never read from `conn` again.

    const baseline = rssMiB(executor.pid);
    let peak = baseline;
    const other = await connectExecutor(executor.url);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rssMiB(executor.pid));
      // Other connections keep working meanwhile.
      const proc = await other.start({
        processId: `echo-${i}`,
        argv: ["echo", String(i)],
        env: ENV,
      });
      const { chunks } = await proc.read({ waitMs: 5000 });
      assert.equal(new TextDecoder().decode(chunks[0].chunk), `${i}\n`);
    }
    console.log(
      `slow reader: executor RSS ${baseline.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`,
    );
    assert.ok(peak - baseline < 128, `executor RSS grew by ${(peak - baseline).toFixed(0)} MiB`);
    await other.close();
    conn.close();
    // Its session expires and the flood is killed.
    const until = Date.now() + 10_000;
    while (childrenOf(executor.pid).length > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(childrenOf(executor.pid), []);
  } finally {
    await executor.stop();
  }
});
