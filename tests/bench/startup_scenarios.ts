/**
 * Start-up of an executor: `deno run -A mod.ts serve` spawned again and
 * again, one at a time (as the remote backend starts it, with this process's
 * V8 flags), each measured for
 *
 * - the time from the spawn to its URL line on stdout (what a supervisor or
 *   a fleet waits for before it can connect);
 * - its RSS once idle: `VmRSS` a while after the URL line, before any client
 *   connected;
 * - then the first process it runs: a client connects and starts `true`;
 *   start→closed of that first process, which pays for whatever the
 *   executor left for later (its warm workers).
 *
 * Remote only: a local backend has no executor to start.
 */

import { connectExecutor } from "../../mod.ts";
import { median } from "./report.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import {
  type BenchExecutor,
  delay,
  readVmRss,
  type RunContext,
  startBenchExecutor,
  stopExecutor,
  uniqueId,
} from "./targets.ts";

/** Sizes of the start-up scenario. */
export interface StartupSettings {
  /** Executors started, one after another. */
  startupRuns: number;
  /** How long after its URL line an executor's RSS is read. */
  startupIdleMs: number;
}

const MIB = 1024 * 1024;

/** The start-up scenario. */
export function startupScenarios(settings: StartupSettings): Scenario[] {
  return [startup(settings)];
}

function startup({ startupRuns: runs, startupIdleMs: idleMs }: StartupSettings): Scenario {
  return {
    name: "serve start-up",
    only: ["remote"],
    metrics: [
      { id: "startup_url_p50", label: "serve: spawn→URL line p50", unit: "ms", direct: false },
      { id: "startup_rss_p50", label: "serve: idle RSS p50", unit: "MiB", direct: false },
      {
        id: "startup_first_start_p50",
        label: "serve: first true start→closed p50",
        unit: "ms",
        direct: false,
      },
    ],
    async exec(_target, ctx: RunContext): Promise<MetricValues> {
      const toUrl: number[] = [];
      const rss: number[] = [];
      const firstStart: number[] = [];
      for (let i = 0; i < runs; i++) {
        ctx.checkAborted();
        const t0 = performance.now();
        const executor: BenchExecutor = await startBenchExecutor();
        try {
          toUrl.push(performance.now() - t0);
          await delay(idleMs);
          rss.push(await readVmRss(executor.pid) / MIB);
          const client = await connectExecutor(executor.url);
          try {
            const t1 = performance.now();
            const proc = ctx.track(
              await client.start({ processId: uniqueId("startup"), argv: ["true"] }),
            );
            const status = await proc.wait();
            firstStart.push(performance.now() - t1);
            if (status.exitCode !== 0) {
              throw new Error(`the first \`true\` exited with ${JSON.stringify(status)}`);
            }
          } finally {
            await client.close();
          }
        } finally {
          await stopExecutor(executor);
        }
      }
      return {
        startup_url_p50: median(toUrl),
        startup_rss_p50: median(rss),
        startup_first_start_p50: median(firstStart),
      };
    },
  };
}
