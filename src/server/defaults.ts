/**
 * The executor's tunable limits: one table with each limit's option name,
 * `serve` flag, default and help line. `serve()` resolves its options here
 * once and hands every layer below complete values; `serve --help` prints
 * the same table.
 *
 * @module
 */

import { DEFAULT_RETENTION_MS } from "../process/host/process_table.ts";

/** One limit: its `serve` flag, its default and what it means. */
export interface LimitSpec {
  /** The flag, without `--`. */
  flag: string;
  /** The value when neither the option nor the flag is given. */
  default: number;
  /** The largest value accepted (larger ones are lowered to it). */
  max?: number;
  /** One line for `serve --help`. */
  help: string;
}

const MiB = 1024 * 1024;
/** Most bytes Deno's WebSocket server accepts in one message. */
const DENO_MAX_MESSAGE_BYTES = 64 * MiB;

/** Every limit of the executor, by its option name. */
export const SERVE_LIMITS = {
  sessionTtlMs: {
    flag: "session-ttl-ms",
    // Outlasts a client's resume window (30 s by default) plus its dead-peer detection.
    default: 60_000,
    help: "keep a detached session this long",
  },
  drainTimeoutMs: {
    flag: "drain-timeout-ms",
    default: 0,
    help: "on SIGTERM, refuse new work and let running processes finish this long",
  },
  pingIntervalMs: {
    flag: "ping-interval-ms",
    default: 5_000,
    help: "ping a silent client after this long, drop it after as long again (0: never)",
  },
  processRetentionMs: {
    flag: "process-retention-ms",
    default: DEFAULT_RETENTION_MS,
    help: "keep a closed process readable this long",
  },
  maxSessions: { flag: "max-sessions", default: 256, help: "sessions at once" },
  maxProcesses: { flag: "max-processes", default: 4096, help: "live processes in all" },
  maxProcessesPerSession: {
    flag: "max-processes-per-session",
    default: 1024,
    help: "live processes per session",
  },
  maxPendingRequests: {
    flag: "max-pending-requests",
    default: 1024,
    help: "requests in flight per connection",
  },
  maxFrameBytes: {
    flag: "max-frame-bytes",
    default: DENO_MAX_MESSAGE_BYTES,
    max: DENO_MAX_MESSAGE_BYTES,
    help: "largest inbound message; the default is also the most allowed",
  },
  maxBufferedBytes: {
    flag: "max-buffered-bytes",
    default: 64 * MiB,
    help: "outbound queue per connection before backpressure",
  },
  stallTimeoutMs: {
    flag: "stall-timeout-ms",
    default: 60_000,
    help: "close a connection whose full queue drains nothing this long",
  },
  warmWorkers: { flag: "warm-workers", default: 2, help: "pre-started process workers" },
  maxIdleWorkers: {
    flag: "max-idle-workers",
    default: 256,
    help: "idle workers kept after a burst of starts",
  },
  idleWorkerTtlMs: {
    flag: "idle-worker-ttl-ms",
    default: 60_000,
    help: "how long those extra idle workers are kept",
  },
} as const satisfies Record<string, LimitSpec>;

/** The name of a limit. */
export type LimitName = keyof typeof SERVE_LIMITS;

/** Every limit, resolved. */
export type ServeLimits = Record<LimitName, number>;

/** Fills in the defaults (and lowers values over a limit's maximum). */
export function resolveLimits(given: Partial<ServeLimits>): ServeLimits {
  const limits = {} as ServeLimits;
  for (const [name, spec] of Object.entries(SERVE_LIMITS) as [LimitName, LimitSpec][]) {
    const value = given[name] ?? spec.default;
    limits[name] = spec.max === undefined ? value : Math.min(value, spec.max);
  }
  return limits;
}

/** The `serve --help` lines of the limits: flag, help and default, aligned at `column`. */
export function limitsUsage(column: number): string {
  return (Object.values(SERVE_LIMITS) as LimitSpec[]).map((spec) => {
    const flag = `  --${spec.flag} N`;
    return `${flag.padEnd(column)}${spec.help} (default ${spec.default})\n`;
  }).join("");
}
