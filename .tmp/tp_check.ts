import { connectExecutor } from "../mod.ts";
const c = await connectExecutor(Deno.args[0]);
let bad = 0;
for (let r = 0; r < 30; r++) {
  const p = await c.start({ processId: "h" + r, argv: ["head", "-c", "52428800", "/dev/zero"] });
  let n = 0, first = 0;
  for await (const e of p.events()) { if (e.type === "output") { if (!first) first = e.seq; n += e.chunk.byteLength; } if (e.type === "lagged") bad++; }
  if (n !== 52428800 || first !== 1) { bad++; console.log("run", r, "bytes", n, "first seq", first); }
}
console.log("bad runs", bad, "of 30");
await c.close();
