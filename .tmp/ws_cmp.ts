import { connectWebSocket } from "../src/rpc/websocket_client.ts";
const msg = "x".repeat(200);
async function ours() {
  const ws = await connectWebSocket("ws://127.0.0.1:8791");
  let resolve: () => void = () => {};
  ws.onmessage = () => resolve();
  const lat: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      resolve = r;
      ws.send(msg);
    });
    lat.push(performance.now() - t);
  }
  await ws.close();
  lat.sort((a, b) => a - b);
  return lat[1500];
}
async function builtin() {
  const ws = new WebSocket("ws://127.0.0.1:8791");
  await new Promise((r) => ws.onopen = r);
  let res: () => void = () => {};
  ws.onmessage = () => res();
  const lat: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      res = r;
      ws.send(msg);
    });
    lat.push(performance.now() - t);
  }
  ws.close();
  lat.sort((a, b) => a - b);
  return lat[1500];
}
for (let round = 0; round < 3; round++) {
  console.log("ours", (await ours()).toFixed(4), "builtin", (await builtin()).toFixed(4));
}
Deno.exit(0);
