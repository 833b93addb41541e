/**
 * Compares Deno's built-in `WebSocket` client with `connectWebSocket` against a
 * `Deno.serve` echo server on loopback: the gap between two back-to-back small
 * sends (Nagle + delayed ACK), request/reply latency, and 87 KB text echo throughput.
 *
 * Run: `deno run -A tests/bench/websocket_nagle_bench.ts`
 *
 * @module
 */
import { connectWebSocket } from "../../src/transport/websocket_client.ts";

/** The few client operations the bench needs, over either implementation. */
interface Client {
  send(text: string): void;
  onmessage: ((data: string) => void) | null;
  close(): Promise<void>;
}

async function builtin(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const client: Client = {
    send: (text) => ws.send(text),
    onmessage: null,
    close: () =>
      new Promise((resolve) => {
        ws.onclose = () => resolve();
        ws.close();
      }),
  };
  ws.onmessage = (event) => client.onmessage?.(event.data);
  return client;
}

async function ours(url: string): Promise<Client> {
  const ws = await connectWebSocket(url);
  const client: Client = { send: (t) => ws.send(t), onmessage: null, close: () => ws.close() };
  ws.onmessage = (data) => client.onmessage?.(data as string);
  return client;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function next(client: Client): Promise<string> {
  return new Promise((resolve) => client.onmessage = resolve);
}

let gapStart = 0;
let gapReport: ((gap: number) => void) | null = null;
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onmessage = (event) => {
    if (event.data === "a") gapStart = performance.now();
    else if (event.data === "b") gapReport?.(performance.now() - gapStart);
    else socket.send(event.data);
  };
  return response;
});
const url = `ws://127.0.0.1:${server.addr.port}/`;
const small = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "process/poll",
  params: { id: "p1" },
});
const big = JSON.stringify({ data: "x".repeat(87 * 1024 - 12) });

for (const [name, open] of [["built-in WebSocket", builtin], ["connectWebSocket", ours]] as const) {
  const client = await open(url);
  // 1. Gap between two back-to-back sends, as seen by the server.
  const gaps: number[] = [];
  for (let i = 0; i < 50; i++) {
    const gap = new Promise<number>((resolve) => gapReport = resolve);
    client.send("a");
    client.send("b");
    gaps.push(await gap);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  // 2. Request/reply round trip, one at a time.
  const rtts: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    const reply = next(client);
    client.send(small);
    await reply;
    rtts.push(performance.now() - t0);
  }
  // 3. Throughput of 87 KB text frames, 16 in flight.
  const total = 2000;
  let received = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    client.onmessage = () => {
      if (++received === total) resolve();
      else if (sent < total) sent++, client.send(big);
    };
    for (; sent < 16; sent++) client.send(big);
  });
  const mbps = (total * big.length * 2) / 1e6 / ((performance.now() - t0) / 1000);
  console.log(
    `${name.padEnd(20)} back-to-back gap p50 ${percentile(gaps, 0.5).toFixed(2)} ms, ` +
      `max ${Math.max(...gaps).toFixed(2)} ms, ${
        gaps.filter((g) => g > 20).length
      }/50 over 20 ms | echo RTT p50 ${percentile(rtts, 0.5).toFixed(3)} ms, ` +
      `p99 ${percentile(rtts, 0.99).toFixed(3)} ms | ` +
      `87 KB echo ${mbps.toFixed(0)} MB/s (both directions)`,
  );
  await client.close();
}
await server.shutdown();
