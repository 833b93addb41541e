import { LocalExecBackend, connectExecutor, type ExecBackend } from "../mod.ts";
async function run(name: string, b: ExecBackend) {
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    const p = await b.start({ processId: "h" + Math.random(), argv: ["head", "-c", "52428800", "/dev/zero"] });
    let n = 0, k = 0, max = 0;
    for await (const e of p.events()) if (e.type === "output") { n += e.chunk.byteLength; k++; max = Math.max(max, e.chunk.byteLength); }
    const dt = performance.now() - t;
    console.log(name, "MB/s", (n / 1e3 / dt).toFixed(0), "events", k, "max", max);
  }
}
const l = new LocalExecBackend(); await run("local", l); await l.close();
if (Deno.args[0]) { const c = await connectExecutor(Deno.args[0]); await run("remote", c); await c.close(); }
