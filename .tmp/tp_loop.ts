import { LocalExecBackend } from "../mod.ts";
const l = new LocalExecBackend();
const end = Date.now() + 8000; let total = 0; const t0 = performance.now();
while (Date.now() < end) {
  const p = await l.start({ processId: "h" + Math.random(), argv: ["head", "-c", "52428800", "/dev/zero"] });
  for await (const e of p.events()) if (e.type === "output") total += e.chunk.byteLength;
}
console.log("MB/s", (total / 1e3 / (performance.now() - t0)).toFixed(0));
await l.close();
