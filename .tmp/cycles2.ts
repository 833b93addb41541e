import { LocalExecBackend } from "../mod.ts";
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) / 1024;
const b = new LocalExecBackend({ retentionMs: 1000, warmWorkers: 1 });
const run = async (n: number) => { for (let i = 0; i < n; i++) { const p = await b.start({ processId: "c" + Math.random(), argv: ["true"] }); await p.wait(); } };
await run(300); await new Promise((r) => setTimeout(r, 2000));
const m0 = Deno.memoryUsage(); const r0 = rss();
for (let k = 0; k < 4; k++) {
  await run(1000); await new Promise((r) => setTimeout(r, 1500));
  const m = Deno.memoryUsage();
  console.log(`after ${(k + 1) * 1000}: rss +${(rss() - r0).toFixed(1)} MiB, main heapUsed +${((m.heapUsed - m0.heapUsed) / 1048576).toFixed(1)} MiB, external +${((m.external - m0.external) / 1048576).toFixed(1)}`);
}
await b.close();
