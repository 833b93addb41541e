/**
 * The main thread's handle on one process: it drives the worker that owns the
 * child, answers what it can without a worker round trip (write status), and
 * keeps the closed process's log as an archive once the worker is released.
 *
 * Long (~480 lines) on purpose: one class whose parts (requests to the
 * worker, the stdin backlog, write ids, events, the archive) share one
 * process's state and ordering; the messages are in `worker_protocol.ts`,
 * the table of processes in `process_table.ts`.
 *
 * @module
 */

import { INTERNAL_ERROR, RpcError } from "../../protocol/errors.ts";
import type {
  ProcessEvent,
  ReadResponse,
  TerminateSignal,
  WriteStatus,
} from "../../protocol/types.ts";
import { OutputLog } from "../output_log.ts";
import type { EventRouter } from "./event_router.ts";
import type { WorkerPool } from "./worker_pool.ts";
import {
  CARRIER_BYTES,
  type FromWorker,
  type SpawnSpec,
  type ToWorker,
  TRANSFER_THRESHOLD,
  type WireFormat,
  WRITTEN_REPORT_BYTES,
} from "../worker_protocol.ts";

/**
 * Bytes a process's stdin may have waiting: past this, `write` callers wait
 * until the child has read enough (backpressure on the writer), locally and
 * through an executor alike.
 */
export const STDIN_BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * How many `writeId`s of accepted writes a process remembers (the oldest are
 * forgotten first): a client retries a write at most a few times, within
 * the time a resume takes, so the last 1024 cover every retry of every
 * write it can have in flight (`--max-pending-requests` is 1024 too).
 */
export const REMEMBERED_WRITE_IDS = 1024;

/** Receives a subscriber's events: history first, then live. */
export interface EventSink {
  /** One event, in seq order. */
  push(event: ProcessEvent): void;
  /** The process failed outside its own lifecycle (its worker died). */
  fail(message: string): void;
}

/** Options of {@link ProcessHost.start}. */
/** What processes report for an executor's metrics (`GET /metrics`). */
export interface ProcessMetrics {
  /** A process started, `seconds` after its start was asked for. */
  started(seconds: number): void;
  /** A process could not be started (the program, its cwd, or its sandbox). */
  startFailed(): void;
  /** Bytes of output (stdout, stderr, pty) a process produced. */
  output(bytes: number): void;
  /** Bytes written to a process's stdin. */
  stdin(bytes: number): void;
}

export interface ProcessHostOptions {
  /** Where workers come from. */
  pool: WorkerPool;
  /**
   * Receives pre-serialized notifications: JSON-RPC text or binary output
   * frames. A frame's buffer is reused once this returns: copy what you keep.
   */
  onWire?: (message: string | Uint8Array) => void;
  /** Called once the process closed and its log was archived. */
  onArchived?: (host: ProcessHost) => void;
  /** Where output and stdin bytes are counted. */
  metrics?: ProcessMetrics;
}

/** Read options, already defaulted. */
export interface HostReadOptions {
  /** Return chunks after this seq. */
  afterSeq: number;
  /** Byte budget or null. */
  maxBytes: number | null;
  /** Long-poll duration. */
  waitMs: number;
}

/**
 * `closing`: the worker sent `finished` (the log is archived here) but the
 * process's last events are still on their way through the events port:
 * the worker is kept until they arrived, since a message port's messages can
 * be lost when its worker is terminated right after posting them (measured:
 * 6 of 200), and a released worker may be terminated at once.
 */
type State = "running" | "closing" | "archived" | "failed";

/** A request to the worker, kept until answered (by the worker, or from the archive). */
type PendingRequest = {
  resolve(value: unknown): void;
  reject(error: Error): void;
  /** The answer once the process closed, for a request the worker got too late. */
  fromArchive(archive: OutputLog): unknown;
};

/** Main-thread handle of a process running in a worker. */
export class ProcessHost {
  /** The caller's process id. */
  readonly processId: string;
  readonly #spec: SpawnSpec;
  readonly #options: ProcessHostOptions;
  #worker: Worker | null;
  #state: State = "running";
  #stdinOpen: boolean;
  #nextId = 1;
  #pending = new Map<number, PendingRequest>();
  #archive: OutputLog | null = null;
  #failure: string | null = null;
  #closedWaiters: (() => void)[] = [];
  #stdinBacklog = 0;
  #backlogWaiters: (() => void)[] = [];
  /** `writeId`s of accepted writes, oldest first (see {@link REMEMBERED_WRITE_IDS}). */
  #writeIds = new Set<string>();

  #pid = 0;
  #sink: EventSink | null = null;
  #router: EventRouter | null = null;
  #generation: number | null = null;
  #started: Promise<void>;

  private constructor(
    spec: SpawnSpec,
    worker: Worker,
    options: ProcessHostOptions,
    sink?: EventSink,
  ) {
    this.processId = spec.processId;
    this.#spec = spec;
    this.#options = options;
    this.#worker = worker;
    this.#stdinOpen = spec.tty || spec.pipeStdin;
    let resolveStarted: () => void = () => {};
    let rejectStarted: (error: Error) => void = () => {};
    this.#started = new Promise((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    // One handler from the first message on: nothing the worker posts right
    // after `started` (output, even `closed`) can fall between two handlers.
    type Posted = FromWorker | string | Uint8Array;
    const receive = (message: Posted) => {
      if (typeof message === "string") {
        options.onWire?.(message);
      } else if (message instanceof Uint8Array) {
        options.onWire?.(message);
        // Sent (or dropped) by now: a carrier goes back to the worker for the next frame.
        const buffer = message.buffer as ArrayBuffer;
        if (buffer.byteLength === CARRIER_BYTES) {
          this.#worker?.postMessage({ type: "recycle", buffer } satisfies ToWorker, [buffer]);
        }
      } else if (message.type === "started") {
        this.#pid = message.pid;
        resolveStarted();
      } else if (message.type === "startFailed") {
        rejectStarted(new RpcError(INTERNAL_ERROR, message.message, { kind: message.kind }));
      } else {
        this.#onMessage(message);
      }
    };
    worker.onmessage = (event: MessageEvent<Posted | Posted[]>) => {
      const data = event.data;
      if (Array.isArray(data)) {
        for (const message of data) receive(message);
      } else {
        receive(data);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const message = `the worker of process ${spec.processId} crashed: ${event.message}`;
      rejectStarted(new RpcError(INTERNAL_ERROR, message));
      this.#fail(message);
    };
    if (sink !== undefined) {
      const router = options.pool.router(worker);
      this.#router = router;
      this.#sink = sink;
      this.#generation = router.add((event) => {
        // The exit closed stdin: a write after it must say so, whichever port the worker's
        // `stdinClosed` comes on.
        if (event.type === "exited") this.#stdinOpen = false;
        sink.push(event);
        if (event.type === "closed") {
          this.#unroute();
          if (this.#state === "closing") this.#release();
        }
      });
    }
    worker.postMessage(
      { type: "start", spec: { ...spec, events: this.#generation } } satisfies ToWorker,
    );
  }

  /**
   * Spawns the process in a pooled worker. Resolves once the child runs;
   * rejects with -32603 and the OS error when it cannot be started. A `sink`
   * given here is subscribed before the child writes anything.
   */
  static async start(
    spec: SpawnSpec,
    options: ProcessHostOptions,
    sink?: EventSink,
  ): Promise<ProcessHost> {
    const worker = await options.pool.acquire();
    const host = new ProcessHost(spec, worker, options, sink);
    let rejectClosed: (error: Error) => void = () => {};
    const closed = new Promise<never>((_, reject) => rejectClosed = reject);
    const removeListener = options.pool.onClose(() => {
      rejectClosed(
        new RpcError(INTERNAL_ERROR, "the backend was closed while the process was starting"),
      );
    });
    const started = Promise.race([host.#started, closed]);
    options.pool.holdRefill(started);
    try {
      await started;
    } catch (error) {
      // A failed spawn leaves the worker clean (no process), but don't risk reusing it. It sent
      // nothing on its events port: stop routing it (which closes the port) now.
      host.#unroute();
      host.#worker = null;
      host.#state = "failed";
      options.pool.discard(worker);
      throw error;
    } finally {
      removeListener();
    }
    return host;
  }

  /** OS pid of the child (its process group id). */
  get pid(): number {
    return this.#pid;
  }

  /** True when the child runs inside a sandbox (bubblewrap). */
  get sandboxed(): boolean {
    return this.#spec.sandbox !== null;
  }

  /** True until the process closed (exit seen and both streams ended). */
  get running(): boolean {
    return this.#state === "running";
  }

  /** How it exited, once its log was archived (null before, or when its worker failed). */
  get exit(): { code: number; signal: string | null } | null {
    return this.#archive?.exit ?? null;
  }

  /** True once the process closed (and its worker went back to the pool) or failed. */
  get closed(): boolean {
    return this.#state === "archived" || this.#state === "failed";
  }

  /** Resolves when the process closed (or its worker failed). */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.#closedWaiters.push(resolve));
  }

  /** `process/read` with chunks as base64 JSON text. */
  async readJson(options: HostReadOptions): Promise<string> {
    if (this.#archive !== null) return this.#archive.readJson(options.afterSeq, options.maxBytes);
    return await this.#request(
      "read",
      { ...options, format: "json" },
      (archive) => archive.readJson(options.afterSeq, options.maxBytes),
    ) as string;
  }

  /** `process/read` with chunks as bytes. */
  async readBytes(options: HostReadOptions): Promise<ReadResponse> {
    if (this.#archive !== null) return this.#archive.readBytes(options.afterSeq, options.maxBytes);
    return await this.#request(
      "read",
      { ...options, format: "bytes" },
      (archive) => archive.readBytes(options.afterSeq, options.maxBytes),
    ) as ReadResponse;
  }

  /**
   * Queues bytes for the child's stdin (then closes it when `closeStdin`) and
   * says what happened to them. `data` of 64 KiB or more is transferred to
   * the worker (detached here); smaller data is copied. A write with a
   * `writeId` this process already accepted is answered `accepted` again and
   * not applied: a client may retry a write whose answer it lost.
   */
  write(
    data: Uint8Array,
    options: { closeStdin?: boolean; writeId?: string | null } = {},
  ): WriteStatus {
    const { closeStdin = false, writeId } = options;
    if (writeId != null && this.#writeIds.has(writeId)) return "accepted";
    if (!this.#stdinOpen || this.#state !== "running") return "stdinClosed";
    if (writeId != null) this.#rememberWrite(writeId);
    if (closeStdin && !this.#spec.tty) this.#stdinOpen = false;
    this.#stdinBacklog += data.byteLength;
    this.#options.metrics?.stdin(data.byteLength);
    const ack = this.#stdinBacklog > WRITTEN_REPORT_BYTES;
    const transfer = data.byteLength >= TRANSFER_THRESHOLD && data.byteOffset === 0 &&
        data.byteLength === data.buffer.byteLength
      ? [data.buffer as ArrayBuffer]
      : [];
    this.#worker!.postMessage(
      { type: "write", data, closeStdin, ack } satisfies ToWorker,
      transfer,
    );
    return "accepted";
  }

  #rememberWrite(writeId: string): void {
    this.#writeIds.add(writeId);
    if (this.#writeIds.size > REMEMBERED_WRITE_IDS) {
      this.#writeIds.delete(this.#writeIds.values().next().value!);
    }
  }

  /** Signals the process group (SIGKILL by default). Resolves true when the process was running. */
  async terminate(signal: TerminateSignal = "SIGKILL"): Promise<boolean> {
    if (this.#state !== "running") return false;
    const result = await this.#request("terminate", { signal }, () => ({ running: false })) as {
      running: boolean;
    };
    return result.running;
  }

  /**
   * Bytes written to stdin that the child has not taken yet (at most
   * {@link WRITTEN_REPORT_BYTES} more: small writes are reported in bulk).
   */
  get stdinBacklog(): number {
    return this.#stdinBacklog;
  }

  /** Resolves once the stdin backlog is at most `bytes` (or the process ended). */
  whenBacklogBelow(bytes: number): Promise<void> {
    if (this.#stdinBacklog <= bytes || this.#state !== "running") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.#stdinBacklog <= bytes || this.#state !== "running") resolve();
        else this.#backlogWaiters.push(check);
      };
      this.#backlogWaiters.push(check);
    });
  }

  /** Serializes output notifications in `format` from now on (the connection changed). */
  setWireFormat(format: WireFormat): void {
    if (this.#state === "running") {
      this.#worker?.postMessage({ type: "wireFormat", format } satisfies ToWorker);
    }
  }

  /** Stops reading the child's output until {@link resume} (the pipe fills and the child blocks). */
  pause(): void {
    if (this.#state === "running") this.#worker?.postMessage({ type: "pause" } satisfies ToWorker);
  }

  /** Reads the child's output again. */
  resume(): void {
    if (this.#state === "running") this.#worker?.postMessage({ type: "resume" } satisfies ToWorker);
  }

  /** Kills the process group now, without waiting for the worker (shutdown, expiry). */
  kill(): void {
    // pid 0 would be kill(0): this process's own group. Never before `started`.
    if (this.#state !== "running" || this.#pid <= 0) return;
    try {
      Deno.kill(-this.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
    this.#worker?.postMessage({ type: "kill" } satisfies ToWorker);
  }

  #unroute(): void {
    if (this.#generation !== null) this.#router?.delete(this.#generation);
    this.#generation = null;
    this.#router = null;
    this.#sink = null;
  }

  #request(
    type: "read" | "terminate",
    fields: Record<string, unknown>,
    fromArchive: (archive: OutputLog) => unknown,
  ): Promise<unknown> {
    if (this.#failure !== null) {
      return Promise.reject(new RpcError(INTERNAL_ERROR, this.#failure));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, fromArchive });
      this.#worker!.postMessage({ type, id, ...fields } as ToWorker);
    });
  }

  #onMessage(message: FromWorker): void {
    switch (message.type) {
      case "reply": {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        pending?.resolve(message.result);
        break;
      }
      case "stdinClosed":
        this.#stdinOpen = false;
        break;
      case "outputBytes":
        this.#options.metrics?.output(message.bytes);
        break;
      case "written": {
        this.#stdinBacklog -= message.bytes;
        const waiters = this.#backlogWaiters.splice(0);
        for (const check of waiters) check();
        break;
      }
      case "finished":
        this.#archive = new OutputLog(this.#spec, message.snapshot);
        this.#state = "closing";
        this.#stdinOpen = false;
        this.#answerFromArchive(this.#archive);
        // With a sink, the worker goes back once the `closed` event came through the events port.
        if (this.#generation === null) this.#release();
        break;
    }
  }

  /** The process closed and every message of it arrived: its worker goes back to the pool. */
  #release(): void {
    this.#state = "archived";
    this.#options.pool.release(this.#worker!);
    this.#worker = null;
    this.#notifyClosed();
    this.#options.onArchived?.(this);
  }

  /**
   * Requests the worker will never answer: those it got after `finished`
   * (it answers every earlier one before). They get what the archive says.
   */
  #answerFromArchive(archive: OutputLog): void {
    for (const { resolve, fromArchive } of this.#pending.values()) resolve(fromArchive(archive));
    this.#pending.clear();
  }

  #fail(message: string): void {
    if (this.#state === "archived" || this.#state === "failed") return;
    this.kill();
    this.#state = "failed";
    this.#failure = message;
    if (this.#worker !== null) this.#options.pool.discard(this.#worker);
    this.#worker = null;
    const error = new RpcError(INTERNAL_ERROR, message);
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#sink?.fail(message);
    this.#unroute();
    this.#notifyClosed();
    this.#options.onArchived?.(this);
  }

  #notifyClosed(): void {
    for (const resolve of this.#closedWaiters.splice(0)) resolve();
    for (const check of this.#backlogWaiters.splice(0)) check();
  }
}
