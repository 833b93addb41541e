import { LocalExecBackend, connectExecutor, type ExecBackend } from "../mod.ts";
const b: ExecBackend = Deno.args[0] ? await connectExecutor(Deno.args[0]) : new LocalExecBackend();
for (let round = 0; round < 6; round++) {
  const t0 = performance.now(); let total = 0;
  const p = await b.start({ processId: "h" + Math.random(), argv: ["head", "-c", "52428800", "/dev/zero"] });
  for await (const e of p.events()) if (e.type === "output") total += e.chunk.byteLength;
  console.log(Deno.args[0] ? "remote" : "local", "MB/s", (total / 1e3 / (performance.now() - t0)).toFixed(0));
}
await (b as any).close();
