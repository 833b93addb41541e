/**
 * The processes of one session (or of one local backend), by caller-chosen
 * id: reservation while starting, duplicate detection, and removal once a
 * closed process's retention window ends.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError } from "../../protocol/errors.ts";
import type { StartParams } from "../../protocol/types.ts";
import { buildChildEnv } from "./env_policy.ts";
import { type EventSink, ProcessHost, type ProcessMetrics } from "./process_host.ts";
import type { WorkerPool } from "./worker_pool.ts";
import type { SpawnSpec, WireFormat } from "../worker_protocol.ts";
import { type SandboxWrapper, sandboxWrapper } from "../../sandbox/bwrap.ts";
import { endSpan, startSpan } from "../../util/telemetry.ts";

/** Retained output per process: 1 MiB. */
export const DEFAULT_RETAINED_BYTES = 1024 * 1024;
/** Replay history per subscriber: 256 output events. */
export const DEFAULT_REPLAY_EVENTS = 256;
/** How long a closed process stays readable: 30 s. */
export const DEFAULT_RETENTION_MS = 30_000;
/** Most closed processes one table keeps readable; the oldest are forgotten first. */
export const MAX_RETAINED = 256;

/** Options of {@link ProcessTable}. */
export interface ProcessTableOptions {
  /** Where workers come from. */
  pool: WorkerPool;
  /** How long a closed process stays readable ({@link DEFAULT_RETENTION_MS} in the protocol). */
  processRetentionMs: number;
  /** Retained output per process (default {@link DEFAULT_RETAINED_BYTES}). */
  retainedBytes?: number;
  /**
   * Receives pre-serialized notifications; when absent none are made. A binary
   * frame's buffer is reused once this returns: copy what you keep.
   */
  onWire?: (message: string | Uint8Array) => void;
  /** Don't let retention timers keep the program alive (library use). */
  unrefTimers?: boolean;
  /** Refuse starts beyond this many live processes. */
  maxProcesses?: number;
  /** Message for the limit error. */
  maxProcessesHint?: string;
  /** Called before each start; throws to refuse it (a limit shared with other tables). */
  admit?: () => void;
  /** Where starts, failures and bytes are counted. */
  metrics?: ProcessMetrics;
}

/** A table entry: a running or retained process, or a reservation. */
export type ProcessEntry = ProcessHost | "starting";

/** The processes of one session. */
export class ProcessTable {
  readonly #options: ProcessTableOptions;
  #entries = new Map<string, ProcessEntry>();
  #starting = new Map<string, Promise<ProcessHost>>();
  /** Fires when the oldest retained process is due to be forgotten (one timer for all of them). */
  #retentionTimer: ReturnType<typeof setTimeout> | null = null;
  #paused = false;
  /**
   * Closed processes in retention, oldest first: each key forgets its
   * process, its value is when. Every process is retained equally long, so
   * this is also the order in which they are due.
   */
  #retained = new Map<() => void, number>();
  #wireFormat: WireFormat = "json";
  #closed = false;

  /** Creates an empty table. */
  constructor(options: ProcessTableOptions) {
    this.#options = options;
  }

  /** Number of entries (starting, running and retained). */
  get size(): number {
    return this.#entries.size;
  }

  /** Number of processes not yet closed. */
  get live(): number {
    let count = 0;
    for (const entry of this.#entries.values()) {
      if (entry === "starting" || !entry.closed) count++;
    }
    return count;
  }

  /** The entry for an id, if any. */
  lookup(processId: string): ProcessEntry | undefined {
    return this.#entries.get(processId);
  }

  /** The process once it has started (waits for a start in progress); undefined if none. */
  async whenStarted(processId: string): Promise<ProcessHost | undefined> {
    const entry = this.#entries.get(processId);
    if (entry !== "starting") return entry;
    return await this.#starting.get(processId)?.catch(() => undefined);
  }

  /**
   * Starts a process. Throws -32600 for a duplicate id, -32603 when the
   * program cannot be spawned.
   */
  async start(params: StartParams, sink?: EventSink): Promise<ProcessHost> {
    const id = params.processId;
    if (this.#closed) {
      throw new RpcError(
        INVALID_REQUEST,
        "the session or backend is closing: no new process can start",
      );
    }
    if (this.#entries.has(id)) throw new RpcError(INVALID_REQUEST, `process ${id} already exists`);
    const max = this.#options.maxProcesses;
    if (max !== undefined && this.live >= max) {
      throw new RpcError(
        INVALID_REQUEST,
        this.#options.maxProcessesHint ?? `too many processes: the limit is ${max}`,
      );
    }
    this.#options.admit?.();
    const options = this.#options;
    const began = performance.now();
    const span = startSpan("process", {
      "execbridge.process.id": id,
      "execbridge.process.tty": params.tty ?? false,
    });
    const cwd = params.cwd ?? Deno.cwd();
    const env = buildChildEnv(params.env ?? undefined, { policy: params.envPolicy });
    this.#entries.set(id, "starting");
    let sandbox: SandboxWrapper | null;
    try {
      // Enforced, or refused before anything runs (the id is free again).
      sandbox = await sandboxWrapper(params.sandbox, {
        cwd,
        env,
        enforceManagedNetwork: params.enforceManagedNetwork,
      });
    } catch (error) {
      options.metrics?.startFailed();
      endSpan(span, { error: (error as Error).message });
      this.#entries.delete(id);
      throw error;
    }
    const spec: SpawnSpec = {
      processId: id,
      argv: params.argv,
      cwd,
      env,
      tty: params.tty ?? false,
      pipeStdin: params.pipeStdin ?? false,
      arg0: params.arg0 ?? null,
      sandbox,
      wire: options.onWire !== undefined ? this.#wireFormat : "none",
      retainedBytes: options.retainedBytes ?? DEFAULT_RETAINED_BYTES,
      replayEvents: DEFAULT_REPLAY_EVENTS,
      events: null,
    };
    let host: ProcessHost;
    const starting = ProcessHost.start(spec, {
      pool: options.pool,
      onWire: options.onWire,
      // The host itself: a short process can be archived before `starting` resolves (before
      // `host` below is set), and its entry must still be forgotten after the window.
      onArchived: (archived) => {
        const exit = archived.exit;
        endSpan(span, {
          attributes: exit === null ? {} : {
            "process.exit.code": exit.code,
            ...(exit.signal === null ? {} : { "execbridge.process.signal": exit.signal }),
          },
        });
        this.#retain(id, archived);
      },
      metrics: options.metrics,
    }, sink);
    this.#starting.set(id, starting);
    try {
      host = await starting;
      options.metrics?.started((performance.now() - began) / 1000);
    } catch (error) {
      options.metrics?.startFailed();
      endSpan(span, { error: (error as Error).message });
      this.#entries.delete(id);
      throw error;
    } finally {
      this.#starting.delete(id);
    }
    if (this.#closed) {
      host.kill();
      this.#entries.delete(id);
      throw new RpcError(
        INVALID_REQUEST,
        "the session or backend is closing: no new process can start",
      );
    }
    this.#entries.set(id, host);
    if (this.#paused) host.pause();
    return host;
  }

  /** Serializes output notifications in `format` (for the connection now attached). */
  setWireFormat(format: WireFormat): void {
    if (format === this.#wireFormat) return;
    this.#wireFormat = format;
    for (const entry of this.#entries.values()) {
      if (entry !== "starting") entry.setWireFormat(format);
    }
  }

  /** Stops reading every process's output (and that of processes started later). */
  pauseAll(): void {
    this.#paused = true;
    for (const entry of this.#entries.values()) if (entry !== "starting") entry.pause();
  }

  /** Reads every process's output again. */
  resumeAll(): void {
    this.#paused = false;
    for (const entry of this.#entries.values()) if (entry !== "starting") entry.resume();
  }

  /** Kills every running process group now and forgets all entries. */
  killAll(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) {
      if (entry !== "starting") entry.kill();
    }
    if (this.#retentionTimer !== null) clearTimeout(this.#retentionTimer);
    this.#retentionTimer = null;
    this.#retained.clear();
  }

  /** Resolves once every process of the table has closed. */
  async whenAllClosed(): Promise<void> {
    const hosts = [...this.#entries.values()].filter((e): e is ProcessHost => e !== "starting");
    const starting = [...this.#starting.values()].map((start) =>
      start.then((host) => host.whenClosed(), () => {})
    );
    await Promise.all([...hosts.map((host) => host.whenClosed()), ...starting]);
  }

  #retain(id: string, host: ProcessHost): void {
    if (this.#closed) {
      this.#entries.delete(id);
      return;
    }
    const forget = () => {
      this.#retained.delete(forget);
      if (this.#entries.get(id) === host) this.#entries.delete(id);
    };
    // Bounded: a client that starts short processes in a loop must not pile
    // up archives (up to 1 MiB each) for the whole window. The oldest go first.
    this.#retained.set(
      forget,
      performance.now() + this.#options.processRetentionMs,
    );
    if (this.#retained.size > MAX_RETAINED) this.#retained.keys().next().value!();
    if (this.#retentionTimer === null) this.#armRetention();
  }

  /** Arms the retention timer for the oldest retained process. */
  #armRetention(): void {
    const oldest = this.#retained.values().next();
    if (oldest.done) return;
    const timer = setTimeout(() => {
      this.#retentionTimer = null;
      const now = performance.now();
      for (const [forget, due] of this.#retained) {
        if (due > now) break;
        forget();
      }
      this.#armRetention();
    }, Math.max(0, oldest.value - performance.now()));
    if (this.#options.unrefTimers) Deno.unrefTimer(timer);
    this.#retentionTimer = timer;
  }
}
