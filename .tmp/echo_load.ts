import { connectExecutor } from "../mod.ts";
const c = await connectExecutor(Deno.args[0]);
const p = await c.start({ processId: "cat", argv: ["cat"], pipeStdin: true });
const it = p.events();
const data = new Uint8Array(100).fill(97);
const lat: number[] = [];
const end = Date.now() + Number(Deno.args[1] ?? 8) * 1000;
while (Date.now() < end) {
  const t = performance.now();
  p.write(data);
  let got = 0;
  while (got < 100) { const e = (await it.next()).value!; if (e.type === "output") got += e.chunk.byteLength; }
  lat.push(performance.now() - t);
}
lat.sort((a, b) => a - b);
console.log("n", lat.length, "p50", lat[lat.length >> 1].toFixed(3));
await p.terminate(); await c.close();
