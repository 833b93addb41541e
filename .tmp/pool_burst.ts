import { WorkerPool } from "../src/process/worker_pool.ts";
const pool = new WorkerPool({ warm: 0, maxIdle: 500 });
await pool.ready();
for (const n of [200]) {
  const t = performance.now();
  const ws = await Promise.all(Array.from({ length: n }, () => pool.acquire()));
  console.log(n, "workers in", (performance.now() - t).toFixed(0), "ms; per worker", ((performance.now() - t) / n).toFixed(1));
  for (const w of ws) pool.release(w);
}
const t = performance.now();
const ws = await Promise.all(Array.from({ length: 200 }, () => pool.acquire()));
console.log("200 again from idle:", (performance.now() - t).toFixed(1), "ms");
pool.close();
