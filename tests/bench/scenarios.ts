/**
 * The five benchmark scenarios, each implemented for plain `Deno.Command`
 * (`direct`, where it applies) and for an execbridge backend (`local` or
 * `remote`). Every scenario checks what it measures (exit codes, exact byte
 * counts, echoed content) and throws a descriptive error otherwise.
 *
 * @module
 */

import type { ExecBackend, ExecProcess } from "../../mod.ts";
import { median, percentile } from "./report.ts";
import { CHILD_ENV, delay, type RunContext, uniqueId } from "./targets.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import { scaleScenarios, type ScaleSettings } from "./scale_scenarios.ts";
import { mcpEcho, type McpSettings } from "./mcp_scenarios.ts";
import { resilienceScenarios, type ResilienceSettings } from "./resilience_scenarios.ts";
import { fleetScenarios, type FleetSettings } from "./fleet_scenarios.ts";
import { startupScenarios, type StartupSettings } from "./startup_scenarios.ts";

/** Sizes and counts of one run (see {@link FULL_SETTINGS} and {@link QUICK_SETTINGS}). */
export interface BenchSettings
  extends ScaleSettings, McpSettings, ResilienceSettings, FleetSettings, StartupSettings {
  /** Measured sequential `true` runs. */
  trueRuns: number;
  /** Unmeasured `true` runs first. */
  trueWarmup: number;
  /** Long-lived processes started one after another (kept running), for the start latency. */
  liveStarts: number;
  /** Pause between two of those starts. */
  liveStartGapMs: number;
  /** Bytes `head -c` writes to stdout. */
  throughputBytes: number;
  /** Throughput runs; the median is reported. */
  throughputRuns: number;
  /** Measured write→echo round trips. */
  echoIterations: number;
  /** Unmeasured round trips first. */
  echoWarmup: number;
  /** Bytes per echo write. */
  echoBytes: number;
  /** `sleep 60` processes kept alive for the RSS measurement. */
  idleProcesses: number;
  /** Wait after the last idle process started, before reading the RSS. */
  idleSettleMs: number;
  /** `sleep 1; echo x` processes started at once. */
  concurrentProcesses: number;
  /** Time limit of one scenario on one backend. */
  timeoutMs: number;
}

/** The full run. */
export const FULL_SETTINGS: BenchSettings = {
  trueRuns: 200,
  trueWarmup: 10,
  liveStarts: 40,
  liveStartGapMs: 100,
  throughputBytes: 50 * 1024 * 1024,
  throughputRuns: 3,
  echoIterations: 1000,
  echoWarmup: 50,
  echoBytes: 100,
  idleProcesses: 100,
  idleSettleMs: 1000,
  concurrentProcesses: 200,
  liveProcesses: 1000,
  lifecycles: 10_000,
  mcpEchoes: 1000,
  mcpBigEchoes: 20,
  resumeRuns: 20,
  respawnRuns: 10,
  fleetExecutors: 20,
  fleetServersPerExecutor: 50,
  startupRuns: 10,
  startupIdleMs: 1000,
  timeoutMs: 180_000,
};

/** `--quick`: a smoke run in a few seconds per backend. */
export const QUICK_SETTINGS: BenchSettings = {
  ...FULL_SETTINGS,
  trueRuns: 20,
  trueWarmup: 3,
  liveStarts: 8,
  throughputBytes: 10 * 1024 * 1024,
  echoIterations: 100,
  echoWarmup: 10,
  idleProcesses: 20,
  concurrentProcesses: 50,
  liveProcesses: 100,
  lifecycles: 500,
  mcpEchoes: 200,
  mcpBigEchoes: 5,
  resumeRuns: 5,
  respawnRuns: 3,
  fleetExecutors: 4,
  fleetServersPerExecutor: 10,
  startupRuns: 3,
};

export type { MetricValues, Scenario } from "./scenario.ts";

const MIB = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds the scenarios for the given settings, in run order. */
export function scenarios(settings: BenchSettings): Scenario[] {
  return [
    // First, while the machine is quiet: nothing the other scenarios leave behind is reclaimed yet.
    ...startupScenarios(settings),
    trueLatency(settings),
    stdoutThroughput(settings),
    echoRoundTrip(settings),
    // Before the long-lived starts: each idle process here gets a new worker, whose cost it carries.
    idleRss(settings),
    liveStartLatency(settings),
    concurrentSleep(settings),
    // Before the scale scenarios, whose thousands of workers and processes leave the machine
    // busy reclaiming memory for a while: that noise swamped sub-millisecond MCP latencies.
    mcpEcho(settings),
    ...scaleScenarios(settings),
    ...resilienceScenarios(settings),
    ...fleetScenarios(settings),
  ];
}

// --- 1. start→closed latency of `true` ----------------------------------

function trueLatency(settings: BenchSettings): Scenario {
  const { trueRuns: runs, trueWarmup: warmup } = settings;
  const summarize = (samples: number[]): MetricValues => ({
    true_p50: percentile(samples, 0.5),
    true_p99: percentile(samples, 0.99),
  });
  return {
    name: "true start→closed",
    metrics: [
      { id: "true_p50", label: "true start→closed p50", unit: "ms", direct: true },
      { id: "true_p99", label: "true start→closed p99", unit: "ms", direct: true },
    ],
    async direct(ctx) {
      const samples: number[] = [];
      for (let i = 0; i < warmup + runs; i++) {
        const t0 = performance.now();
        const { code } = await ctx.spawn(["true"]).output();
        const elapsed = performance.now() - t0;
        if (code !== 0) throw new Error(`true exited with ${code}`);
        if (i >= warmup) samples.push(elapsed);
      }
      return summarize(samples);
    },
    async exec({ backend }, ctx) {
      const samples: number[] = [];
      for (let i = 0; i < warmup + runs; i++) {
        ctx.checkAborted();
        const t0 = performance.now();
        const proc = ctx.track(
          await backend.start({ processId: uniqueId("true"), argv: ["true"], env: CHILD_ENV }),
        );
        const { exitCode } = await proc.wait();
        const elapsed = performance.now() - t0;
        if (exitCode !== 0) throw new Error(`true exited with ${exitCode}`);
        if (i >= warmup) samples.push(elapsed);
      }
      return summarize(samples);
    },
  };
}

// --- 1b. start latency of long-lived processes ------------------------------

/**
 * `start` of `sleep 60`, one every `liveStartGapMs`, each kept running (as
 * MCP servers are): no worker comes back to the pool in between, so this is
 * the start as a user sees it, pool refills included. Direct: `spawn()`.
 */
function liveStartLatency(settings: BenchSettings): Scenario {
  const { liveStarts: count, liveStartGapMs: gapMs } = settings;
  return {
    name: "long-lived start",
    metrics: [
      { id: "live_start_p50", label: "long-lived start p50", unit: "ms", direct: true },
      { id: "live_start_max", label: "long-lived start max", unit: "ms", direct: true },
    ],
    async direct(ctx) {
      const samples: number[] = [];
      const children: Deno.ChildProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          const t0 = performance.now();
          children.push(ctx.spawn(["sleep", "60"], { stdout: "null", stderr: "null" }));
          samples.push(performance.now() - t0);
          await delay(gapMs);
        }
      } finally {
        for (const child of children) child.kill("SIGKILL");
        await Promise.all(children.map((child) => child.status));
      }
      return { live_start_p50: percentile(samples, 0.5), live_start_max: Math.max(...samples) };
    },
    async exec({ backend }, ctx) {
      const samples: number[] = [];
      const procs: ExecProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          ctx.checkAborted();
          const t0 = performance.now();
          procs.push(ctx.track(
            await backend.start({
              processId: uniqueId("live"),
              argv: ["sleep", "60"],
              env: CHILD_ENV,
            }),
          ));
          samples.push(performance.now() - t0);
          await delay(gapMs);
        }
      } finally {
        const closed = procs.map((proc) => proc.wait().catch(() => {}));
        await Promise.all(procs.map((proc) => proc.terminate().catch(() => false)));
        await Promise.all(closed);
      }
      return { live_start_p50: percentile(samples, 0.5), live_start_max: Math.max(...samples) };
    },
  };
}

// --- 2. stdout throughput -------------------------------------------------

function stdoutThroughput(settings: BenchSettings): Scenario {
  const bytes = settings.throughputBytes;
  const argv = ["head", "-c", String(bytes), "/dev/zero"];
  const label = `stdout ${Math.round(bytes / MIB)} MiB throughput`;
  const measure = async (once: () => Promise<number>): Promise<MetricValues> => {
    const rates: number[] = [];
    // One unmeasured run first: the reading code (in a process worker, for
    // execbridge) is still being compiled by V8 during the first megabytes.
    for (let i = -1; i < settings.throughputRuns; i++) {
      const t0 = performance.now();
      const received = await once();
      const seconds = (performance.now() - t0) / 1000;
      if (received !== bytes) {
        throw new Error(`${argv.join(" ")}: received ${received} bytes, expected ${bytes}`);
      }
      if (i >= 0) rates.push(bytes / 1e6 / seconds);
    }
    return { stdout_mbps: median(rates) };
  };
  return {
    name: "stdout throughput",
    metrics: [{ id: "stdout_mbps", label, unit: "MB/s", direct: true }],
    direct: (ctx) =>
      measure(async () => {
        const child = ctx.spawn(argv, { stderr: "null" });
        let received = 0;
        for await (const chunk of child.stdout) received += chunk.byteLength;
        const { code } = await child.status;
        if (code !== 0) throw new Error(`${argv.join(" ")} exited with ${code}`);
        return received;
      }),
    exec: ({ backend }, ctx) =>
      measure(async () => {
        const proc = ctx.track(
          await backend.start({ processId: uniqueId("head"), argv, env: CHILD_ENV }),
        );
        return await countOutput(proc, bytes);
      }),
  };
}

/**
 * Counts the stdout bytes of `proc` through `events()` until `closed`. Seqs
 * must be contiguous from 1: a replay that no longer reaches back to the
 * first chunk (the subscription came too late), a silent seq gap, a
 * `lagged` event, stderr output or a non-zero exit are errors.
 */
async function countOutput(proc: ExecProcess, expected: number): Promise<number> {
  let received = 0;
  let nextSeq = 1;
  let firstOutputSeq: number | null = null;
  let exitCode: number | null = null;
  const gaps: string[] = [];
  for await (const event of proc.events()) {
    if ("seq" in event) {
      if (event.seq !== nextSeq) gaps.push(`${nextSeq}..${event.seq - 1}`);
      nextSeq = event.seq + 1;
    }
    switch (event.type) {
      case "output":
        if (event.stream !== "stdout") {
          throw new Error(`unexpected ${event.stream} output: ${decoder.decode(event.chunk)}`);
        }
        firstOutputSeq ??= event.seq;
        received += event.chunk.byteLength;
        break;
      case "exited":
        exitCode = event.exitCode;
        break;
      case "lagged":
        throw new Error(
          `the events() subscriber lagged: ${event.skipped} events were dropped after seq ${event.lastSeq}`,
        );
      case "failed":
        throw new Error(`the process failed: ${event.message}`);
      case "closed":
        break;
    }
  }
  if (received !== expected || gaps.length > 0) {
    throw new Error(
      `events() delivered ${received} of ${expected} bytes` +
        (gaps.length > 0
          ? `; seqs ${gaps.join(", ")} never reached the subscriber without a lagged event` +
            ` (first output event: seq ${firstOutputSeq})`
          : ""),
    );
  }
  if (exitCode !== 0) throw new Error(`${proc.processId} exited with ${exitCode}`);
  return received;
}

// --- 3. write→echo round trip through `cat` -------------------------------

function echoRoundTrip(settings: BenchSettings): Scenario {
  const { echoIterations: iterations, echoWarmup: warmup, echoBytes: size } = settings;
  const payload = (i: number): Uint8Array => {
    const text = `${i}:`.padEnd(size - 1, String.fromCharCode(97 + (i % 26))) + "\n";
    return encoder.encode(text);
  };
  const summarize = (samples: number[]): MetricValues => ({
    echo_p50: percentile(samples, 0.5),
    echo_p99: percentile(samples, 0.99),
  });
  return {
    name: "cat echo round trip",
    metrics: [
      { id: "echo_p50", label: `cat ${size} B echo p50`, unit: "ms", direct: true },
      { id: "echo_p99", label: `cat ${size} B echo p99`, unit: "ms", direct: true },
    ],
    async direct(ctx) {
      const child = ctx.spawn(["cat"], { stdin: "piped", stderr: "null" });
      const writer = child.stdin.getWriter();
      const reader = child.stdout.getReader();
      const samples: number[] = [];
      try {
        for (let i = 0; i < warmup + iterations; i++) {
          ctx.checkAborted();
          const data = payload(i);
          const t0 = performance.now();
          await writer.write(data);
          let echoed: Uint8Array = new Uint8Array(0);
          while (echoed.byteLength < size) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`cat closed stdout after ${echoed.byteLength} bytes`);
            echoed = concat(echoed, value);
          }
          const elapsed = performance.now() - t0;
          checkEcho(data, echoed);
          if (i >= warmup) samples.push(elapsed);
        }
      } finally {
        await writer.close().catch(() => {});
        reader.releaseLock();
        await child.stdout.cancel().catch(() => {});
        await child.status;
      }
      return summarize(samples);
    },
    async exec({ backend }, ctx) {
      const proc = ctx.track(
        await backend.start({
          processId: uniqueId("cat"),
          argv: ["cat"],
          env: CHILD_ENV,
          pipeStdin: true,
        }),
      );
      // listen() and send(): the lowest-overhead API, as the MCP transport uses it.
      let echoed: Uint8Array = new Uint8Array(0);
      let wake: () => void = () => {};
      const stop = proc.listen((event) => {
        if (event.type === "output") {
          echoed = concat(echoed, event.chunk);
          if (echoed.byteLength >= size) wake();
        }
      });
      const samples: number[] = [];
      try {
        for (let i = 0; i < warmup + iterations; i++) {
          ctx.checkAborted();
          const data = payload(i);
          echoed = new Uint8Array(0);
          const arrived = new Promise<void>((resolve) => wake = resolve);
          const t0 = performance.now();
          proc.send(data);
          await arrived;
          const elapsed = performance.now() - t0;
          checkEcho(data, echoed);
          if (i >= warmup) samples.push(elapsed);
        }
      } finally {
        stop();
        await proc.terminate().catch(() => {});
      }
      await proc.wait();
      return summarize(samples);
    },
  };
}

function checkEcho(sent: Uint8Array, echoed: Uint8Array): void {
  if (echoed.byteLength !== sent.byteLength || !echoed.every((b, i) => b === sent[i])) {
    throw new Error(
      `cat echoed ${echoed.byteLength} bytes that differ from the ${sent.byteLength} written`,
    );
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const result = new Uint8Array(a.byteLength + b.byteLength);
  result.set(a);
  result.set(b, a.byteLength);
  return result;
}

// --- 4. RSS per idle process -----------------------------------------------

function idleRss(settings: BenchSettings): Scenario {
  const count = settings.idleProcesses;
  return {
    name: "RSS per idle process",
    metrics: [{ id: "idle_rss", label: "RSS per idle process", unit: "MiB", direct: false }],
    async exec(target, ctx) {
      const before = await target.rss();
      const procs: ExecProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          ctx.checkAborted();
          procs.push(ctx.track(
            await target.backend.start({
              processId: uniqueId("sleep"),
              argv: ["sleep", "60"],
              env: CHILD_ENV,
            }),
          ));
        }
        await delay(settings.idleSettleMs);
        const after = await target.rss();
        return { idle_rss: (after - before) / count / MIB };
      } finally {
        const closed = procs.map((proc) => proc.wait().catch(() => {}));
        await Promise.all(procs.map((proc) => proc.terminate().catch(() => false)));
        await Promise.all(closed);
      }
    },
  };
}

// --- 5. many concurrent short processes ------------------------------------

function concurrentSleep(settings: BenchSettings): Scenario {
  const count = settings.concurrentProcesses;
  const argv = ["sh", "-c", "sleep 1; echo x"];
  const check = (stdout: string, exitCode: number): void => {
    if (exitCode !== 0 || stdout !== "x\n") {
      throw new Error(`sh -c 'sleep 1; echo x' exited ${exitCode} with ${JSON.stringify(stdout)}`);
    }
  };
  return {
    name: `${count} concurrent sleep 1`,
    metrics: [{
      id: "concurrent_s",
      label: `${count}× sleep 1; echo x wall`,
      unit: "s",
      direct: true,
    }],
    async direct(ctx) {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: count }, async () => {
        const { code, stdout } = await ctx.spawn(argv).output();
        check(decoder.decode(stdout), code);
      }));
      return { concurrent_s: (performance.now() - t0) / 1000 };
    },
    async exec(target, ctx) {
      // Cold: a new backend (executor), not the one earlier scenarios left idle workers in.
      const fresh = await target.fresh?.() ?? null;
      const backend = (fresh ?? target).backend;
      try {
        // A new executor's warm workers are being made: wait as a client would for its first start.
        if (fresh !== null) await awaitReady(backend, ctx);
        const t0 = performance.now();
        await Promise.all(Array.from({ length: count }, async () => {
          const proc = ctx.track(
            await backend.start({ processId: uniqueId("sh"), argv, env: CHILD_ENV }),
          );
          const { stdout, exitCode } = await collectOutput(proc);
          check(stdout, exitCode);
        }));
        return { concurrent_s: (performance.now() - t0) / 1000 };
      } finally {
        await fresh?.close();
      }
    },
  };
}

/** Runs one `true` on `backend`, so that its start-up (and its warm workers) is behind it. */
async function awaitReady(backend: ExecBackend, ctx: RunContext): Promise<void> {
  const proc = ctx.track(
    await backend.start({ processId: uniqueId("ready"), argv: ["true"], env: CHILD_ENV }),
  );
  await proc.wait();
  await delay(100);
}

/** The stdout text and exit code of `proc`, from its events until `closed`. */
async function collectOutput(proc: ExecProcess): Promise<{ stdout: string; exitCode: number }> {
  let stdout = "";
  let exitCode: number | null = null;
  for await (const event of proc.events()) {
    if (event.type === "output" && event.stream === "stdout") {
      stdout += decoder.decode(event.chunk, { stream: true });
    } else if (event.type === "exited") exitCode = event.exitCode;
    else if (event.type === "failed") throw new Error(`${proc.processId} failed: ${event.message}`);
    else if (event.type === "lagged") throw new Error(`${proc.processId}: subscriber lagged`);
  }
  if (exitCode === null) throw new Error(`${proc.processId}: events ended before the exit`);
  return { stdout, exitCode };
}
