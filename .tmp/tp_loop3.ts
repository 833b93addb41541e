import { connectExecutor } from "../mod.ts";
const b = await connectExecutor(Deno.args[0]);
const end = Date.now() + 9000; let total = 0; const t0 = performance.now();
while (Date.now() < end) {
  const p = await b.start({ processId: "h" + Math.random(), argv: ["head", "-c", "52428800", "/dev/zero"] });
  for await (const e of p.events()) if (e.type === "output") total += e.chunk.byteLength;
}
console.log("MB/s", (total / 1e3 / (performance.now() - t0)).toFixed(0));
await b.close();
