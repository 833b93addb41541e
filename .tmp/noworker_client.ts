import { connectWebSocket } from "../src/rpc/websocket_client.ts";
const ws = await connectWebSocket("ws://127.0.0.1:8795");
let r: () => void = () => {};
ws.onmessage = () => r();
const chunk = btoa("a".repeat(100));
const lat: number[] = [];
for (let i = 0; i < 3000; i++) { const t = performance.now(); await new Promise<void>((res) => { r = res; ws.send(JSON.stringify({ method: "process/write", params: { processId: "cat", chunk } })); }); if (i > 300) lat.push(performance.now() - t); }
lat.sort((a, b) => a - b); console.log("no-worker executor echo p50", lat[lat.length >> 1].toFixed(3), "p99", lat[Math.floor(lat.length * .99)].toFixed(3));
await ws.close();
