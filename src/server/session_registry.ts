/**
 * Sessions outlive connections: a session owns a process table; when its
 * connection drops it is detached (processes keep running, their output is
 * no longer read, so that none is lost) and may be resumed by id until its
 * TTL expires, which kills its processes.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError, SESSION_ATTACHED } from "../protocol/errors.ts";
import type { Logger } from "../log/logger.ts";
import { FileHandles } from "../fs/file_handles.ts";
import { CallLog } from "./call_log.ts";
import type { ExecutorMetrics } from "./metrics.ts";

/** Why a new session or process is refused while the executor drains. */
const DRAINING = "the executor is shutting down (draining): no new sessions or processes; " +
  "connect to another executor";
import { ProcessTable } from "../process/host/process_table.ts";
import type { WorkerPool } from "../process/host/worker_pool.ts";

/** Whatever a session sends its notifications through. */
export interface SessionSink {
  /** Sends a pre-serialized notification: JSON-RPC text or a binary output frame. */
  send(message: string | Uint8Array): void;
}

/** Options of {@link SessionRegistry}. */
export interface SessionRegistryOptions {
  /** Where workers come from. */
  pool: WorkerPool;
  /** How long a detached session waits for a resume. */
  sessionTtlMs: number;
  /** How long a closed process stays readable. */
  processRetentionMs: number;
  /** Most sessions at once. */
  maxSessions: number;
  /** Most live processes per session. */
  maxProcessesPerSession: number;
  /** Most live processes in all. */
  maxProcesses: number;
  /** Lifecycle logs. */
  log: Logger;
  /** Where starts, bytes, resumes and expiries are counted. */
  metrics?: ExecutorMetrics;
}

/** One session: a process table and, while attached, a connection. */
export class Session {
  /** The session id (UUID v4). */
  readonly id: string = crypto.randomUUID();
  /** The session's processes. */
  readonly processes: ProcessTable;
  /** The session's open files (`fs/open`). */
  readonly files: FileHandles = new FileHandles();
  #calls: { name: string; log: CallLog } | null = null;

  /**
   * The answers kept for a client that repeats its calls after a reconnect,
   * under the name it gave its request numbering (`resumableCalls`): a new
   * name (another client resuming the session) starts an empty log.
   */
  callLog(name: string): CallLog {
    if (this.#calls?.name !== name) this.#calls = { name, log: new CallLog() };
    return this.#calls.log;
  }
  /** The attached connection, or null while detached. */
  sink: SessionSink | null = null;
  /** Expiry timer while detached. */
  expiry: ReturnType<typeof setTimeout> | null = null;

  /** Creates a session with its own process table. */
  constructor(registry: SessionRegistry, options: SessionRegistryOptions) {
    const max = options.maxProcessesPerSession;
    this.processes = new ProcessTable({
      pool: options.pool,
      processRetentionMs: options.processRetentionMs,
      onWire: (message) => this.sink?.send(message),
      maxProcesses: max,
      maxProcessesHint:
        `too many processes in this session: the limit is ${max} (--max-processes-per-session)`,
      admit: () => registry.admitProcess(),
      metrics: options.metrics,
    });
  }
}

/** All sessions of an executor. */
export class SessionRegistry {
  readonly #options: SessionRegistryOptions;
  readonly #sessions = new Map<string, Session>();
  #draining = false;

  /** Creates an empty registry. */
  constructor(options: SessionRegistryOptions) {
    this.#options = options;
  }

  /** Number of sessions, attached or detached. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions waiting for a resume. */
  get detached(): number {
    let count = 0;
    for (const session of this.#sessions.values()) if (session.sink === null) count++;
    return count;
  }

  /** Processes not yet closed, in every session. */
  get liveProcesses(): number {
    let live = 0;
    for (const session of this.#sessions.values()) live += session.processes.live;
    return live;
  }

  /**
   * Refuses new sessions and new processes from now on (the executor
   * drains); resumes are still accepted.
   */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves once every session's processes have closed. */
  whenAllClosed(): Promise<void> {
    return Promise.all([...this.#sessions.values()].map((s) => s.processes.whenAllClosed()))
      .then(() => {});
  }

  /** Throws when the executor-wide process limit is reached, or the executor drains. */
  admitProcess(): void {
    if (this.#draining) throw new RpcError(INVALID_REQUEST, DRAINING);
    const max = this.#options.maxProcesses;
    if (this.liveProcesses >= max) {
      throw new RpcError(
        INVALID_REQUEST,
        `too many processes on this executor: the limit is ${max} (--max-processes)`,
      );
    }
  }

  /** Creates a session attached to `sink`. */
  create(sink: SessionSink): Session {
    if (this.#draining) throw new RpcError(INVALID_REQUEST, DRAINING);
    const max = this.#options.maxSessions;
    if (this.#sessions.size >= max) {
      throw new RpcError(
        INVALID_REQUEST,
        `too many sessions on this executor: the limit is ${max} (--max-sessions)`,
      );
    }
    const session = new Session(this, this.#options);
    session.sink = sink;
    this.#sessions.set(session.id, session);
    this.#options.log.info(`session ${session.id} created`);
    return session;
  }

  /**
   * Re-attaches a detached session. Throws -32600 for an unknown or expired
   * id, -32010 when it is attached to another connection.
   */
  resume(id: string, sink: SessionSink): Session {
    const session = this.#sessions.get(id);
    if (session === undefined) throw new RpcError(INVALID_REQUEST, `unknown session id ${id}`);
    if (session.sink !== null) {
      throw new RpcError(
        SESSION_ATTACHED,
        `session ${id} is already attached to another connection`,
      );
    }
    if (session.expiry !== null) clearTimeout(session.expiry);
    session.expiry = null;
    session.sink = sink;
    session.processes.resumeAll();
    this.#options.metrics?.resumed();
    this.#options.log.info(`session ${id} resumed`);
    return session;
  }

  /** Detaches a session from `sink` (if still attached to it) and arms its expiry. */
  detach(session: Session, sink: SessionSink): void {
    if (session.sink !== sink) return;
    session.sink = null;
    // Nobody receives output now: stop reading it (the children block once their pipes
    // fill), so that what the client has not seen stays within the retained output.
    session.processes.pauseAll();
    const ttl = this.#options.sessionTtlMs;
    this.#options.log.info(`session ${session.id} detached; it expires in ${ttl} ms`);
    session.expiry = setTimeout(() => {
      session.expiry = null;
      if (session.sink !== null || this.#sessions.get(session.id) !== session) return;
      this.#sessions.delete(session.id);
      const live = session.processes.live;
      session.processes.killAll();
      this.#options.metrics?.expired();
      session.files.closeAll().then(() =>
        this.#options.log.info(
          `session ${session.id} expired; killed ${live} running process${live === 1 ? "" : "es"}`,
        )
      );
    }, ttl);
  }

  /** Kills every process of every session. */
  shutdown(): Session[] {
    const sessions = [...this.#sessions.values()];
    for (const session of sessions) {
      if (session.expiry !== null) clearTimeout(session.expiry);
      session.processes.killAll();
      void session.files.closeAll();
    }
    this.#sessions.clear();
    return sessions;
  }
}
