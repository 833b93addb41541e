/**
 * What the benchmark measures against: the `local` and `remote` execbridge
 * backends (with a way to read the RSS of the process hosting their workers),
 * plain `Deno.Command` children for `direct`, and the per-run context that
 * tracks every child and process so that a failed or timed-out run kills them.
 *
 * @module
 */

import {
  connectExecutor,
  type ExecBackend,
  type ExecProcess,
  LocalExecBackend,
} from "../../mod.ts";
import { startExecutor } from "../support/executor_process.ts";
import { LEAN_WORKERS_V8_FLAG, leanWorkersFlagSet } from "../../src/process/host/v8_flags.ts";

/** The environment given to every started process (execbridge children get exactly this). */
export const CHILD_ENV: Record<string, string> = {
  PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
};

/** An execbridge backend under test. */
export interface ExecTarget {
  /** `local` or `remote`. */
  readonly name: "local" | "remote";
  /** The backend that starts processes. */
  readonly backend: ExecBackend;
  /** Resident set size in bytes of the process that hosts the backend's workers. */
  rss(): Promise<number>;
  /** Open file descriptors of that process. */
  fds(): Promise<number>;
  /** Kills its processes and releases it (stops the executor subprocess for `remote`). */
  close(): Promise<void>;
  /**
   * Opens a new backend of the same kind, with nothing left from earlier
   * scenarios (no idle workers): for the cold-start scenario. Absent for
   * peers, which keep no workers.
   */
  fresh?(): Promise<ExecTarget>;
}

/**
 * How long the bench's backends keep closed processes readable (the
 * default is 30 s): short, so that the lifecycle scenario can wait for the
 * window to pass and see whether anything stays behind.
 */
export const RETENTION_MS = 5_000;

/**
 * How long idle workers are kept: longer than the whole run, so that the
 * pool does not shrink (and the RSS drop) in the middle of a measurement.
 */
const IDLE_TTL_MS = 30 * 60_000;

/** Idle workers the local backend keeps: an executor's default. */
const MAX_IDLE_WORKERS = 256;

/** Opens a {@link LocalExecBackend}; its workers are threads of this process. */
export function openLocal(): ExecTarget {
  const backend = new LocalExecBackend({
    processRetentionMs: RETENTION_MS,
    idleWorkerTtlMs: IDLE_TTL_MS,
    // As many as an executor keeps by default (`--max-idle-workers`).
    maxIdleWorkers: MAX_IDLE_WORKERS,
  });
  return {
    name: "local",
    backend,
    rss: () => Promise.resolve(Deno.memoryUsage().rss),
    fds: () => countFds(Deno.pid),
    close: () => backend.close(),
    fresh: () => Promise.resolve(openLocal()),
  };
}

/** An executor subprocess the benchmark started. */
export type BenchExecutor = Awaited<ReturnType<typeof startExecutor>>;

/**
 * Starts `deno run -A mod.ts serve` on 127.0.0.1:0 as every remote backend
 * runs it: short retention, idle workers kept for the whole run, and
 * `--v8-flags=--no-short-builtin-calls` when this process has it; then
 * `extraArgs`.
 */
export function startBenchExecutor(extraArgs: readonly string[] = []): Promise<BenchExecutor> {
  return startExecutor([
    "--process-retention-ms",
    String(RETENTION_MS),
    "--idle-worker-ttl-ms",
    String(IDLE_TTL_MS),
    ...extraArgs,
  ], {
    // Run like this process: with the V8 option for lean workers when it has it.
    denoFlags: leanWorkersFlagSet() ? [`--v8-flags=${LEAN_WORKERS_V8_FLAG}`] : [],
  });
}

/**
 * Starts an executor ({@link startBenchExecutor}) and connects
 * `connectExecutor` to it. The executor is stopped again if the connection
 * fails.
 */
export async function openRemote(): Promise<ExecTarget> {
  const executor = await startBenchExecutor();
  try {
    const client = await connectExecutor(executor.url);
    return {
      name: "remote",
      backend: client,
      rss: () => readVmRss(executor.pid),
      fds: () => countFds(executor.pid),
      fresh: openRemote,
      async close() {
        try {
          await withDeadline(client.close(), 5_000, "closing the executor connection");
        } finally {
          await stopExecutor(executor);
        }
      },
    };
  } catch (error) {
    await stopExecutor(executor);
    throw error;
  }
}

/** Stops an executor: SIGTERM lets it kill its process groups; SIGKILL if it hangs. */
export async function stopExecutor(executor: BenchExecutor): Promise<void> {
  try {
    await withDeadline(executor.stop("SIGTERM"), 10_000, "stopping the executor");
  } catch {
    await executor.stop("SIGKILL");
  }
}

/** Open file descriptors of a process, from `/proc/<pid>/fd`. */
export async function countFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

/** `VmRSS` of a process, from `/proc/<pid>/status`, in bytes. */
export async function readVmRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+)\s+kB$/m);
  if (match === null) throw new Error(`no VmRSS line in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} timed out after ${ms / 1000} s`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let idCounter = 0;

/** A process id not used before in this run. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${++idCounter}`;
}

/**
 * The context of one scenario run on one backend: an abort signal (set when
 * the run timed out) and the children and processes it started, so that
 * {@link RunContext.killAll} can end them.
 */
export class RunContext {
  readonly #controller = new AbortController();
  readonly #children = new Set<Deno.ChildProcess>();
  readonly #processes = new Set<ExecProcess>();

  /** Aborted once the run timed out or failed: loops should stop. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Throws when the run was aborted. */
  checkAborted(): void {
    this.#controller.signal.throwIfAborted();
  }

  /**
   * Spawns a plain `Deno.Command` child (the physical baseline: no process
   * group of its own, which would force a fork of this whole process), stdin
   * closed and stdout/stderr piped unless overridden. It is killed if the run
   * is aborted.
   */
  spawn(argv: readonly string[], options: Deno.CommandOptions = {}): Deno.ChildProcess {
    this.checkAborted();
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: CHILD_ENV,
      clearEnv: true,
      ...options,
    }).spawn();
    this.#children.add(child);
    // Forget it once reaped: its pid (and group id) may be reused afterwards.
    child.status.finally(() => this.#children.delete(child));
    return child;
  }

  /** Registers an execbridge process; terminates it at once if the run was already aborted. */
  track<P extends ExecProcess>(proc: P): P {
    this.#processes.add(proc);
    if (this.#controller.signal.aborted) {
      proc.terminate().catch(() => {});
      this.checkAborted();
    }
    return proc;
  }

  /** Aborts the run and kills every child and process it started. */
  async killAll(reason: Error): Promise<void> {
    this.#controller.abort(reason);
    for (const child of this.#children) {
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    const children = [...this.#children].map((child) => child.status.catch(() => {}));
    const processes = [...this.#processes].map((proc) => proc.terminate().catch(() => false));
    await withDeadline(
      Promise.all([...children, ...processes]),
      10_000,
      "killing the processes of a failed run",
    ).catch((error) => console.error(`warning: ${error.message}`));
  }
}
