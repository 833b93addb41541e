import { LocalExecBackend } from "../mod.ts";
const b = new LocalExecBackend();
const t0 = performance.now();
let done = 0;
const all = Promise.all(Array.from({ length: Number(Deno.args[0] ?? 200) }, async (_, i) => {
  const p = await b.start({ processId: "s" + i, argv: ["sh", "-c", "sleep 1; echo x"] });
  const st = await p.wait();
  done++;
  return st;
}));
const timer = setInterval(() => console.log("done", done, "after", ((performance.now() - t0) / 1000).toFixed(1), "s"), 2000);
await all;
clearInterval(timer);
console.log("all done in", ((performance.now() - t0) / 1000).toFixed(2));
await b.close();
