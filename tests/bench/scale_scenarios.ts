/**
 * Scale: many live processes at once, many lifecycles in a row (memory and
 * file descriptors must not creep), and a second burst of concurrent
 * starts once the worker pool is warm.
 */

import type { ExecProcess } from "../../mod.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import { CHILD_ENV, delay, RETENTION_MS, uniqueId } from "./targets.ts";
import { RETIRE_GAP_MS } from "../../src/process/host/worker_pool.ts";

const MIB = 1024 * 1024;

/** Sizes of the scale scenarios. */
export interface ScaleSettings {
  /** `sleep 60` processes alive at once. */
  liveProcesses: number;
  /** Sequential `true` lifecycles. */
  lifecycles: number;
  /** Concurrent `sleep 1; echo x` for the warm burst. */
  concurrentProcesses: number;
}

/** The scale scenarios. */
export function scaleScenarios(settings: ScaleSettings): Scenario[] {
  return [lifecycles(settings), warmBurst(settings), liveProcesses(settings)];
}

function liveProcesses({ liveProcesses: count }: ScaleSettings): Scenario {
  return {
    name: `${count} live processes`,
    metrics: [
      { id: "live_start_s", label: `${count} live processes: start all`, unit: "s", direct: false },
      { id: "live_rss", label: `${count} live processes: RSS each`, unit: "MiB", direct: false },
    ],
    async exec(target, ctx) {
      const before = await target.rss();
      const procs: ExecProcess[] = [];
      const t0 = performance.now();
      try {
        // Started 50 at a time: as fast as the worker pool can go, without
        // a thousand requests waiting at once.
        for (let i = 0; i < count; i += 50) {
          ctx.checkAborted();
          const batch = await Promise.all(
            Array.from({ length: Math.min(50, count - i) }, () =>
              target.backend.start({
                processId: uniqueId("live"),
                argv: ["sleep", "60"],
                env: CHILD_ENV,
              })),
          );
          for (const proc of batch) procs.push(ctx.track(proc));
        }
        const started = (performance.now() - t0) / 1000;
        await delay(1000);
        const after = await target.rss();
        return { live_start_s: started, live_rss: (after - before) / count / MIB };
      } finally {
        const closed = procs.map((proc) => proc.wait().catch(() => {}));
        await Promise.all(procs.map((proc) => proc.terminate().catch(() => false)));
        await Promise.all(closed);
        // The workers beyond the pool's idle limit are terminated one per RETIRE_GAP_MS: let that
        // finish, or it runs (in this process, for the local backend) under the next measurement.
        await delay(count * RETIRE_GAP_MS + 1000);
      }
    },
  };
}

function lifecycles({ lifecycles: count }: ScaleSettings): Scenario {
  const warmup = Math.min(500, Math.floor(count / 10));
  return {
    name: `${count} lifecycles`,
    metrics: [
      {
        id: "cycles_rss_pct",
        label: `${count} lifecycles: RSS growth`,
        unit: "%",
        direct: false,
      },
      { id: "cycles_fds", label: `${count} lifecycles: fd growth`, unit: "fds", direct: false },
    ],
    async exec(target, ctx) {
      const run = async (n: number) => {
        for (let i = 0; i < n; i++) {
          if (i % 100 === 0) ctx.checkAborted();
          const proc = await target.backend.start({
            processId: uniqueId("cycle"),
            argv: ["true"],
            env: CHILD_ENV,
          });
          const { exitCode } = await proc.wait();
          if (exitCode !== 0) throw new Error(`true exited with ${exitCode}`);
        }
      };
      // Closed processes stay readable for the retention window: measure
      // once the window of every run before has passed.
      await run(warmup);
      await delay(RETENTION_MS + 1000);
      const rss0 = await target.rss();
      const fds0 = await target.fds();
      await run(count);
      await delay(RETENTION_MS + 1000);
      const rss1 = await target.rss();
      const fds1 = await target.fds();
      return { cycles_rss_pct: (rss1 / rss0 - 1) * 100, cycles_fds: fds1 - fds0 };
    },
  };
}

function warmBurst({ concurrentProcesses: count }: ScaleSettings): Scenario {
  const argv = ["sh", "-c", "sleep 1; echo x"];
  const burst = async (start: () => Promise<ExecProcess>) => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: count }, async () => {
      const proc = await start();
      const { exitCode } = await proc.wait();
      if (exitCode !== 0) throw new Error(`sleep exited with ${exitCode}`);
    }));
    return (performance.now() - t0) / 1000;
  };
  return {
    name: `${count} concurrent, warm pool`,
    metrics: [{
      id: "warm_burst_s",
      label: `${count}× sleep 1, warm pool`,
      unit: "s",
      direct: false,
    }],
    async exec({ backend }, ctx) {
      const start = async () =>
        ctx.track(await backend.start({ processId: uniqueId("burst"), argv, env: CHILD_ENV }));
      // The first burst warms the pool: its workers stay idle for the next one, and the pool
      // makes the rest of the burst's peak in the background (one worker per ~40 ms).
      await burst(start);
      await delay(Math.max(2_000, count * 40));
      const values: MetricValues = { warm_burst_s: await burst(start) };
      return values;
    },
  };
}
