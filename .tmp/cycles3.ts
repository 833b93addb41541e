import { WorkerPool } from "../src/process/worker_pool.ts";
import { ProcessTable } from "../src/process/process_table.ts";
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) / 1024;
const mode = Deno.args[0];
const pool = new WorkerPool({ warm: 1 });
const table = new ProcessTable({ pool, retentionMs: 500 });
const run = async (n: number) => {
  for (let i = 0; i < n; i++) {
    const sink = mode === "sink" ? { push() {}, fail() {} } : undefined;
    const h = await table.start({ processId: "c" + Math.random(), argv: ["true"] }, sink);
    await h.whenClosed();
  }
};
await run(300); await new Promise((r) => setTimeout(r, 1000));
const r0 = rss();
for (let k = 0; k < 3; k++) { await run(1000); await new Promise((r) => setTimeout(r, 1000)); console.log(mode, `after ${(k + 1) * 1000}: rss +${(rss() - r0).toFixed(1)} MiB`); }
table.killAll(); pool.close();
