import { connectExecutor } from "../mod.ts";
import { connectWebSocket } from "../src/rpc/websocket_client.ts";
function pct(a: number[], p: number) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * s.length)]; }
const ws = await connectWebSocket(Deno.args[0]);
let onMsg: (d: string | Uint8Array) => void = () => {};
ws.onmessage = (d) => onMsg(d);
const call = (id: number, method: string, params: unknown) => new Promise<any>((r) => { onMsg = (d) => { if (typeof d === "string") { const m = JSON.parse(d); if (m.id === id) r(m); } }; ws.send(JSON.stringify({ id, method, params })); });
await call(1, "initialize", { clientName: "x", binaryOutput: true });
ws.send(JSON.stringify({ method: "initialized" }));
await call(2, "process/start", { processId: "cat", argv: ["cat"], pipeStdin: true });
const chunk = btoa("a".repeat(100));
for (const mode of ["request", "notify", "request", "notify"]) {
  const lat: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      onMsg = (d) => { if (typeof d !== "string") r(); };
      ws.send(mode === "request" ? JSON.stringify({ id: 100 + i, method: "process/write", params: { processId: "cat", chunk } }) : JSON.stringify({ method: "process/write", params: { processId: "cat", chunk } }));
    });
    if (i >= 200) lat.push(performance.now() - t);
  }
  console.log(mode, "p50", pct(lat, .5).toFixed(3), "p99", pct(lat, .99).toFixed(3));
}
await ws.close();
