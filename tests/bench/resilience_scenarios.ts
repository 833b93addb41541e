/**
 * Resilience:
 *
 * - how long a session takes to come back after the link does: an executor
 *   behind a fault-injecting proxy (tests/support/fault_proxy.ts), a process
 *   printing a line every 10 ms, and `connectExecutor` with fast dead-peer
 *   detection; the link is blackholed until the client notices, then
 *   restored; the time from the restore to the first event pushed after the
 *   resume is measured (remote only: a local backend has no link);
 * - how long an MCP server takes to be back after a crash: the test MCP
 *   server (tests/fixtures) behind a `ServerSupervisor`, its `crash` tool
 *   called, and the time from the crash to the answer of the next call (held
 *   meanwhile, then run on the new server after the handshake replay).
 */

import { Client } from "@modelcontextprotocol/sdk/client";
import {
  connectExecutor,
  type ConnectionStateChange,
  ExecutorStdioServerLauncher,
  LocalStdioServerLauncher,
  ServerSupervisor,
} from "../../mod.ts";
import { silentLogger } from "../../src/log/logger.ts";
import type { StdioServerLauncher } from "../../src/mcp/local_stdio.ts";
import { fixtureServer } from "../support/cli.ts";
import { startFaultProxy } from "../support/fault_proxy.ts";
import { percentile } from "./report.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import {
  CHILD_ENV,
  type RunContext,
  startBenchExecutor,
  stopExecutor,
  withDeadline,
} from "./targets.ts";

/** Sizes of the resilience scenarios. */
export interface ResilienceSettings {
  /** Link losses measured. */
  resumeRuns: number;
  /** Server crashes measured. */
  respawnRuns: number;
}

/** The resilience scenarios. */
export function resilienceScenarios(settings: ResilienceSettings): Scenario[] {
  return [resumeLatency(settings), respawnTime(settings)];
}

/** The line printer: one line every 10 ms until killed. */
const TICKER = [
  Deno.execPath(),
  "eval",
  "let i = 0; setInterval(() => console.log(i++), 10);",
];

function resumeLatency({ resumeRuns: runs }: ResilienceSettings): Scenario {
  return {
    name: "link restored → resumed",
    only: ["remote"],
    metrics: [
      {
        id: "resume_p50",
        label: "link restored → first resumed event p50",
        unit: "ms",
        direct: false,
      },
      {
        id: "resume_p99",
        label: "link restored → first resumed event p99",
        unit: "ms",
        direct: false,
      },
    ],
    async exec(_target, ctx): Promise<MetricValues> {
      // Its own executor: the proxy's port differs from the executor's (hence --allow-host).
      const executor = await startBenchExecutor(["--allow-host", "127.0.0.1"]);
      const at = new URL(executor.url);
      const proxy = await startFaultProxy({
        target: { hostname: at.hostname, port: Number(at.port) },
      });
      const waiting = new Map<string, () => void>();
      const client = await connectExecutor(proxy.url(), {
        pingIntervalMs: 100,
        onStateChange: (change: ConnectionStateChange) => waiting.get(change.state)?.(),
      });
      const next = (state: string) =>
        withDeadline(
          new Promise<void>((resolve) => waiting.set(state, resolve)),
          30_000,
          `waiting for the connection to be ${state}`,
        );
      try {
        const ticker = ctx.track(
          await client.start({ processId: "ticker", argv: TICKER, env: CHILD_ENV }),
        );
        let onEvent: (() => void) | null = null;
        ticker.listen((event) => {
          if (event.type === "output") onEvent?.();
        });
        const samples: number[] = [];
        for (let i = 0; i < runs; i++) {
          ctx.checkAborted();
          const lost = next("reconnecting");
          proxy.blackhole();
          await lost;
          const resumed = next("connected");
          const t0 = performance.now();
          await proxy.restore();
          await resumed;
          // The first event pushed after the resume (the catch-up read publishes older ones first).
          await new Promise<void>((resolve) => onEvent = resolve);
          onEvent = null;
          samples.push(performance.now() - t0);
        }
        await ticker.terminate();
        return { resume_p50: percentile(samples, 0.5), resume_p99: percentile(samples, 0.99) };
      } finally {
        await client.close();
        await proxy.close();
        await stopExecutor(executor);
      }
    },
  };
}

/**
 * `runs` times: a supervised server (defaults: the first restart waits 100
 * ms), crashed; the time from the crash to the answer of the next call.
 */
async function measureRespawn(
  launcher: StdioServerLauncher,
  runs: number,
  ctx: RunContext,
): Promise<MetricValues> {
  const command = { name: "respawn", ...fixtureServer() };
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    ctx.checkAborted();
    const supervisor = await ServerSupervisor.launch(() => launcher.launch(command), {
      name: "respawn",
      log: silentLogger,
    });
    const client = new Client({ name: "execbridge-bench", version: "1.0.0" });
    try {
      await client.connect(supervisor);
      const t0 = performance.now();
      await client.callTool({ name: "crash", arguments: { code: 3 } }).then(
        () => {
          throw new Error("the crash tool answered");
        },
        () => {},
      );
      const answer = await client.callTool({ name: "counter", arguments: {} });
      samples.push(performance.now() - t0);
      const text = (answer.content as { text?: string }[])[0]?.text;
      if (text !== "1") throw new Error(`the next call did not run on a new server: ${text}`);
    } finally {
      await client.close().catch(() => {});
      await supervisor.close().catch(() => {});
    }
  }
  return { respawn_p50: percentile(samples, 0.5), respawn_max: Math.max(...samples) };
}

function respawnTime({ respawnRuns: runs }: ResilienceSettings): Scenario {
  return {
    name: "MCP server respawn",
    only: ["direct", "local", "remote"],
    metrics: [
      { id: "respawn_p50", label: "MCP server crash → next answer p50", unit: "ms", direct: true },
      { id: "respawn_max", label: "MCP server crash → next answer max", unit: "ms", direct: true },
    ],
    direct: (ctx) => measureRespawn(new LocalStdioServerLauncher({ log: silentLogger }), runs, ctx),
    exec: ({ backend }, ctx) =>
      measureRespawn(new ExecutorStdioServerLauncher(backend, { log: silentLogger }), runs, ctx),
  };
}
