import { connectWebSocket } from "../src/rpc/websocket_client.ts";
const ws = await connectWebSocket("ws://127.0.0.1:8791");
let resolve: () => void = () => {};
ws.onmessage = () => resolve();
const lat: number[] = [];
const msg = JSON.stringify({
  jsonrpc: "2.0",
  method: "process/output",
  params: { processId: "x", seq: 1, stream: "stdout", chunk: btoa("a".repeat(100)) },
});
for (let i = 0; i < 3000; i++) {
  const t = performance.now();
  await new Promise<void>((r) => {
    resolve = r;
    ws.send(msg);
  });
  lat.push(performance.now() - t);
}
lat.sort((a, b) => a - b);
console.log("ws rtt p50", lat[1500].toFixed(4), "p99", lat[2970].toFixed(4));
await ws.close();
