/**
 * {@link LocalExecBackend}: the process interface without any server. Each
 * process runs in a Web Worker of the calling program, exactly like on an
 * executor; events arrive through a worker `MessagePort`.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import { parseParams } from "../protocol/validate.ts";
import type { StartParams } from "../protocol/types.ts";
import { type ProcessHost, STDIN_BACKLOG_BYTES } from "../process/host/process_host.ts";
import { DEFAULT_RETENTION_MS, ProcessTable } from "../process/host/process_table.ts";
import { WorkerPool } from "../process/host/worker_pool.ts";
import { TRANSFER_THRESHOLD } from "../process/worker_protocol.ts";
import { ProcessEvents } from "./process_events.ts";
import { waitForExit } from "./wait.ts";
import type {
  ExecBackend,
  ExecProcess,
  ExecProcessEvent,
  ExitStatus,
  ReadOptions,
} from "./types.ts";
import type { ReadResponse, TerminateSignal, WriteStatus } from "../protocol/types.ts";

/** Options of {@link LocalExecBackend}. */
export interface LocalExecBackendOptions {
  /** Pre-started workers kept ready (default 2). */
  warmWorkers?: number;
  /**
   * Idle workers, the warm ones included, are stopped after this long, so a
   * forgotten backend doesn't hold the program open (default 2000 ms).
   */
  idleWorkerTtlMs?: number;
  /**
   * Most idle workers kept for reuse (default 64, ~6–8 MiB each). After a
   * burst of starts, the pool grows back to the burst's size up to this many,
   * so that the next burst finds its workers ready.
   */
  maxIdleWorkers?: number;
  /** How long a closed process stays readable (default 30 s, as on an executor). */
  processRetentionMs?: number;
  /** Retained output per process (default 1 MiB, as on an executor). */
  retainedBytes?: number;
}

/**
 * The local backend's defaults. They differ from an executor's (`serve`'s
 * are in `src/server/defaults.ts`) where a library differs from a server:
 * fewer idle workers, kept for seconds, not a minute.
 */
const LOCAL_DEFAULTS = {
  warmWorkers: 2,
  idleWorkerTtlMs: 2000,
  maxIdleWorkers: 64,
  processRetentionMs: DEFAULT_RETENTION_MS,
} as const;

const encoder = new TextEncoder();

/**
 * Runs processes locally, each in its own worker, with the same interface as
 * a remote executor.
 *
 * @example
 * ```ts
 * import { LocalExecBackend } from "@execbridge/execbridge";
 *
 * await using backend = new LocalExecBackend();
 * const proc = await backend.start({ processId: "p1", argv: ["echo", "hi"] });
 * for await (const event of proc.events()) {
 *   if (event.type === "output") console.log(new TextDecoder().decode(event.chunk));
 * }
 * ```
 */
export class LocalExecBackend implements ExecBackend, AsyncDisposable {
  readonly #pool: WorkerPool;
  readonly #table: ProcessTable;
  #closed = false;

  /** Creates a backend; workers start on first use. */
  constructor(options: LocalExecBackendOptions = {}) {
    this.#pool = new WorkerPool({
      warmWorkers: options.warmWorkers ?? LOCAL_DEFAULTS.warmWorkers,
      maxIdleWorkers: options.maxIdleWorkers ?? LOCAL_DEFAULTS.maxIdleWorkers,
      idleWorkerTtlMs: options.idleWorkerTtlMs ?? LOCAL_DEFAULTS.idleWorkerTtlMs,
      trimWarm: true,
    });
    this.#table = new ProcessTable({
      pool: this.#pool,
      processRetentionMs: options.processRetentionMs ?? LOCAL_DEFAULTS.processRetentionMs,
      retainedBytes: options.retainedBytes,
      unrefTimers: true,
    });
  }

  /** Starts a process. Rejects with `RpcError` -32600 (duplicate id) or -32603 (spawn failure). */
  async start(params: StartParams): Promise<ExecProcess> {
    if (this.#closed) throw new RpcError(INVALID_REQUEST, "the local backend is closed");
    // Subscribed at start: the events of the very first output on are kept.
    const events = new ProcessEvents();
    const host = await this.#table.start(
      parseParams(schemas.startParams, params, { method: Method.processStart }),
      {
        push: (event) => events.accept(event),
        fail: (message) => events.fail(message),
      },
    );
    return new LocalProcess(host, events);
  }

  /** Kills every process and stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#table.killAll();
    await this.#table.whenAllClosed();
    await this.#pool.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class LocalProcess implements ExecProcess {
  readonly processId: string;
  readonly #host: ProcessHost;
  readonly #events: ProcessEvents;

  constructor(host: ProcessHost, events: ProcessEvents) {
    this.processId = host.processId;
    this.#host = host;
    this.#events = events;
  }

  events(): AsyncIterableIterator<ExecProcessEvent> {
    return this.#events.subscribe();
  }

  listen(handler: (event: ExecProcessEvent) => void): () => void {
    return this.#events.listen(handler);
  }

  async read(options: ReadOptions = {}): Promise<ReadResponse> {
    const result = await this.#host.readBytes({
      afterSeq: options.afterSeq ?? 0,
      maxBytes: options.maxBytes ?? null,
      waitMs: options.waitMs ?? 0,
    });
    return { ...result, failure: null };
  }

  async write(data: Uint8Array | string): Promise<WriteStatus> {
    const status = this.#host.write(ownBytes(data));
    if (status === "accepted") await this.#host.whenBacklogBelow(STDIN_BACKLOG_BYTES);
    return status;
  }

  send(data: Uint8Array | string): void {
    this.#host.write(ownBytes(data));
  }

  closeStdin(): Promise<WriteStatus> {
    return Promise.resolve(this.#host.write(new Uint8Array(0), { closeStdin: true }));
  }

  terminate(options: { signal?: TerminateSignal } = {}): Promise<boolean> {
    return this.#host.terminate(options.signal);
  }

  wait(): Promise<ExitStatus> {
    return waitForExit((handler) => this.listen(handler));
  }
}

/**
 * Bytes the host may take: big ones are transferred (detached), so the
 * caller's buffer is copied first; small ones are copied by `postMessage`.
 */
function ownBytes(data: Uint8Array | string): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  // A shared buffer would be shared with the worker, not copied.
  const shared = typeof SharedArrayBuffer !== "undefined" &&
    data.buffer instanceof SharedArrayBuffer;
  return data.byteLength >= TRANSFER_THRESHOLD || shared ? data.slice() : data;
}
