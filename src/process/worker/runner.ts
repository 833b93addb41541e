/**
 * The worker side of a process session: owns the child (in its own process
 * group), numbers its events in an {@link OutputLog}, serves reads (with
 * long-poll), writes and terminate, and fans events out to the main thread
 * (pre-serialized JSON-RPC) and to the worker's events port (bytes).
 *
 * Imported only by `workers/process_worker.ts`. Besides types it imports only
 * the log, the child (spawning, with the launcher), the notification
 * builders and the output frame encoder, so an idle worker stays small; the
 * PTY module loads on demand.
 * A worker runs one process at a time; once it closed, it hands its log to
 * the main thread (with `finished`) and can run another.
 *
 * Long (~470 lines) on purpose: start, read, write, terminate and the event
 * fan-out all act on one process's state in one order; what could stand
 * apart already does (the child and its pumps in `child.ts`, the PTY in
 * `pty.ts`, the log in `output_log.ts`).
 *
 * @module
 */

import type { ProcessStream, TerminateSignal } from "../../protocol/types.ts";
import { OutputLog } from "../output_log.ts";
import { findLauncher } from "../launcher.ts";
import { likelySandboxDenied } from "../../sandbox/denial.ts";
import {
  type Child,
  type OutputSink,
  recycleGather,
  releaseSpareBuffers,
  spawnChild,
} from "./child.ts";
import { encodeOutputFrame, encodeProcessId } from "../../protocol/binary_output.ts";
import {
  closedNotification,
  exitedNotification,
  outputNotification,
  paramsPrefix,
} from "../../protocol/notifications.ts";
import {
  CARRIER_BYTES,
  type FromWorker,
  type SpawnSpec,
  type ToWorker,
  TRANSFER_THRESHOLD,
  type WireFormat,
  type WorkerEvent,
  WRITTEN_REPORT_BYTES,
} from "../worker_protocol.ts";

/** The subset of a worker's global scope the runner uses. */
export interface WorkerScope {
  /** Posts to the main thread. */
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Receives from the main thread. */
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}

/** Carriers back from the main thread, for the next big frames (see {@link CARRIER_BYTES}). */
const carriers: ArrayBuffer[] = [];
const MAX_CARRIERS = 4;
/** After a terminate, how long output may keep draining once the exit was seen. */
const TERMINATE_DRAIN_MS = 200;
/** Output byte counts go to the main thread (metrics) at most this often. */
const OUTPUT_REPORT_MS = 1000;

/** Runs the process worker protocol on a worker scope. */
export function runProcessWorker(scope: WorkerScope): void {
  let runner: ProcessRunner | null = null;
  let events: MessagePort | null = null;
  const recycle = (buffer: ArrayBuffer) => {
    if (runner !== null && buffer.byteLength === CARRIER_BYTES && carriers.length < MAX_CARRIERS) {
      carriers.push(buffer);
    }
  };
  // The process closed and its log went to the main thread with `finished`: idle again.
  const onFinished = () => {
    runner = null;
    // An idle worker keeps no gather buffers or carriers (up to 6 MiB): only a running process reuses them.
    releaseSpareBuffers();
    carriers.length = 0;
  };
  scope.onmessage = (event) => {
    const message = event.data;
    if (message.type === "init") {
      events = message.events;
      // Idle again after priming: keep no gather buffer it made (as onFinished).
      if (message.prime) void primeSpawn().then(() => runner === null && releaseSpareBuffers());
      // The main thread sends carriers of output events back on the same port.
      events.onmessage = (event: MessageEvent<{ buffer: ArrayBuffer }>) =>
        recycle(event.data.buffer);
    } else if (message.type === "start") {
      const ports = message.spec.events === null ? null : events;
      runner = new ProcessRunner(scope, message.spec, { events: ports, onFinished });
      runner.start();
    } else if (message.type === "recycle") {
      recycle(message.buffer);
    } else if (runner !== null) {
      // Requests for a process that already finished are answered by the main thread.
      runner.handle(message);
    }
  };
  // Deno loads its subprocess code on the first use of `Deno.Command`
  // (~1.6 ms, ~1 MiB that any worker that ran a process holds anyway), and
  // the launcher is found (or installed): do both while the worker is idle,
  // not in its first start.
  void Deno.Command;
  findLauncher();
  post(scope, { type: "ready" });
}

/** Where a priming child's output goes: nowhere. */
const DISCARD: OutputSink = {
  output() {},
  paused: () => null,
  streamOpened() {},
  streamEnded() {},
};

/**
 * Spawns `true` once and waits for it, output discarded. A worker's first
 * spawn is slower than the next ones (V8 compiles the spawn, pipe and exit
 * paths in each isolate: ~5 ms more on the first, measured); a worker the
 * pool keeps idle does it while idle, so the first start it serves (an MCP
 * server's, typically) does not pay it. A worker made for a waiting start is
 * not primed (see `WorkerPool`). Failing to prime changes nothing.
 */
async function primeSpawn(): Promise<void> {
  try {
    const child = await spawnChild({
      processId: "",
      argv: ["true"],
      cwd: "/",
      env: { PATH: "/usr/bin:/bin" },
      tty: false,
      pipeStdin: true,
      arg0: null,
      sandbox: null,
      wire: "none",
      retainedBytes: 0,
      replayEvents: 0,
      events: null,
    }, DISCARD);
    child.closeStdin();
    await child.status;
  } catch {
    // No `true` here: the first real start pays, as before.
  }
}

function post(scope: WorkerScope, message: FromWorker): void {
  scope.postMessage(message);
}

class ProcessRunner {
  /** Where the child's output goes: this runner's log and wire. */
  readonly #outputSink: OutputSink = {
    output: (stream, data) => this.#onOutput(stream, data),
    paused: () => this.#paused,
    streamOpened: () => this.#openStreams++,
    streamEnded: () => {
      this.#openStreams--;
      this.#maybeClose();
    },
  };
  readonly #scope: WorkerScope;
  readonly #spec: SpawnSpec;
  readonly #log: OutputLog;
  readonly #wirePrefix: string;
  readonly #idBytes: Uint8Array;
  #wire: WireFormat;
  #child: Child | null = null;
  #openStreams = 0;
  #terminated = false;
  #stdinOpen: boolean;
  #waiters = new Set<() => void>();
  readonly #events: MessagePort | null;
  readonly #onFinished: () => void;
  readonly #generation: number;
  /** While not null, posts to the main thread (and the events port) wait here to go as one message. */
  #outbox: { main: unknown[]; events: unknown[]; transfer: Transferable[] } | null = null;
  /** The last write to the child's stdin (the stream itself runs writes in order). */
  #lastWrite: Promise<void> = Promise.resolve();
  #unreported = 0;
  #paused: Promise<void> | null = null;
  #resume: () => void = () => {};
  /** Output bytes not yet reported to the main thread, and the timer that will. */
  #outputBytes = 0;
  #outputReport: ReturnType<typeof setTimeout> | undefined;

  constructor(
    scope: WorkerScope,
    spec: SpawnSpec,
    options: { events: MessagePort | null; onFinished: () => void },
  ) {
    this.#scope = scope;
    this.#spec = spec;
    this.#events = options.events;
    this.#onFinished = options.onFinished;
    this.#generation = spec.events ?? 0;
    this.#log = new OutputLog(spec);
    this.#log.onEvict = recycleGather;
    this.#stdinOpen = spec.tty || spec.pipeStdin;
    this.#wirePrefix = paramsPrefix(spec.processId);
    this.#idBytes = encodeProcessId(spec.processId);
    this.#wire = spec.wire;
  }

  async start(): Promise<void> {
    try {
      this.#child = await spawnChild(this.#spec, this.#outputSink);
    } catch (error) {
      post(this.#scope, {
        type: "startFailed",
        message: describeSpawnError(this.#spec, error),
        kind: error instanceof Deno.errors.NotFound
          ? "spawnNotFound"
          : error instanceof Deno.errors.PermissionDenied
          ? "spawnPermissionDenied"
          : "spawnFailed",
      });
      return;
    }
    post(this.#scope, { type: "started", pid: this.#child.pid });
    this.#child.status.then((status) => this.#onExit(status));
  }

  handle(message: ToWorker): void {
    switch (message.type) {
      case "read":
        this.#read(message.id, message.afterSeq, message.maxBytes, message.waitMs, message.format);
        break;
      case "write":
        this.#write(message.data, message.closeStdin, message.ack);
        break;
      case "terminate":
        this.#post({ type: "reply", id: message.id, result: this.#terminate(message.signal) });
        break;
      case "kill":
        this.#terminate("SIGKILL");
        break;
      case "wireFormat":
        this.#wire = message.format;
        break;
      case "pause":
        this.#paused ??= new Promise((resolve) => this.#resume = resolve);
        break;
      case "resume":
        this.#resume();
        this.#paused = null;
        break;
    }
  }

  // --- events -----------------------------------------------------------

  #onOutput(stream: ProcessStream, data: Uint8Array): void {
    const seq = this.#log.appendOutput(stream, data);
    this.#outputBytes += data.byteLength;
    this.#outputReport ??= setTimeout(() => this.#reportOutput(), OUTPUT_REPORT_MS);
    if (this.#wire === "binary") {
      const carrier = data.byteLength >= TRANSFER_THRESHOLD
        ? carriers.pop() ?? new ArrayBuffer(CARRIER_BYTES)
        : undefined;
      const frame = encodeOutputFrame(this.#idBytes, { seq, stream, data }, carrier);
      if (frame.byteLength >= TRANSFER_THRESHOLD) {
        this.#post(frame, [frame.buffer as ArrayBuffer]);
      } else {
        this.#post(frame);
      }
    } else if (this.#wire === "json") {
      this.#post(
        outputNotification(this.#wirePrefix, { seq, stream, chunkBase64: data.toBase64() }),
      );
    }
    if (this.#events !== null) sendChunk(this.#events, this.#generation, { seq, stream, data });
    this.#wake();
  }

  #onExit(status: { code: number; signal: string | null }): void {
    this.#batch(() => {
      // Deno reports a signal death as 128 + the signal's number, as the reference does.
      const code = status.code;
      const sandboxDenied = this.#spec.sandbox !== null &&
        likelySandboxDenied(code, this.#log.retainedOutput());
      const exit = this.#log.recordExit(code, status.signal, sandboxDenied);
      this.#child?.closeStdin();
      if (this.#stdinOpen) this.#post({ type: "stdinClosed" } satisfies FromWorker);
      this.#stdinOpen = false;
      if (this.#wire !== "none") {
        this.#post(
          exitedNotification(this.#wirePrefix, {
            seq: exit.seq,
            exitCode: code,
            signal: status.signal,
            sandboxDenied,
          }),
        );
      }
      this.#publish({
        type: "exited",
        seq: exit.seq,
        exitCode: code,
        signal: status.signal,
        ...(sandboxDenied ? { sandboxDenied } : {}),
        g: this.#generation,
      });
      this.#wake();
      if (this.#terminated && this.#openStreams > 0) {
        // A process outside the killed group may hold the pipes open: stop waiting for it.
        setTimeout(() => this.#child?.cancelOutput(), TERMINATE_DRAIN_MS);
      }
      this.#maybeClose();
    });
  }

  /**
   * Closes once the exit was seen and both streams ended: the close event,
   * the answers to waiting reads, then `finished` with the whole log, after
   * which the worker is idle (nothing more is posted for this process).
   */
  #maybeClose(): void {
    if (this.#log.closedSeq !== null || this.#log.exit === null || this.#openStreams > 0) return;
    this.#batch(() => {
      const seq = this.#log.recordClose();
      this.#child?.dispose();
      if (this.#wire !== "none") {
        this.#post(closedNotification(this.#wirePrefix, seq));
      }
      this.#publish({ type: "closed", seq, g: this.#generation });
      this.#wake();
      this.#reportOutput();
      const snapshot = this.#log.snapshot();
      const transfer = [...new Set(snapshot.chunks.map((c) => c.chunk.buffer as ArrayBuffer))];
      this.#post({ type: "finished", snapshot } satisfies FromWorker, transfer);
    });
    this.#onFinished();
  }

  /**
   * Runs `fn` with posts held back, then sends them as one message per port
   * (an array when there are several): the exit, the close and `finished`
   * of a process usually come together, and each message costs both threads
   * a wake-up's worth of work.
   */
  #batch(fn: () => void): void {
    if (this.#outbox !== null) {
      fn();
      return;
    }
    const outbox: { main: unknown[]; events: unknown[]; transfer: Transferable[] } = {
      main: [],
      events: [],
      transfer: [],
    };
    this.#outbox = outbox;
    try {
      fn();
    } finally {
      this.#outbox = null;
      // Events first: once the main thread has `finished`, it may terminate this worker.
      if (outbox.events.length > 0) {
        this.#events?.postMessage(outbox.events.length === 1 ? outbox.events[0] : outbox.events);
      }
      if (outbox.main.length === 1) {
        this.#scope.postMessage(outbox.main[0], outbox.transfer);
      } else if (outbox.main.length > 1) {
        this.#scope.postMessage(outbox.main, outbox.transfer);
      }
    }
  }

  /** Posts to the main thread (held back inside {@link #batch}). */
  #post(message: FromWorker | string | Uint8Array, transfer?: Transferable[]): void {
    const outbox = this.#outbox;
    if (outbox === null) {
      this.#scope.postMessage(message, transfer);
      return;
    }
    outbox.main.push(message);
    if (transfer !== undefined) outbox.transfer.push(...transfer);
  }

  #publish(event: Extract<WorkerEvent, { type: "exited" | "closed" }>): void {
    if (this.#events === null) return;
    if (this.#outbox !== null) this.#outbox.events.push(event);
    else this.#events.postMessage(event);
  }

  /** Tells the main thread how much output there was since the last report. */
  #reportOutput(): void {
    clearTimeout(this.#outputReport);
    this.#outputReport = undefined;
    if (this.#outputBytes === 0) return;
    this.#post({ type: "outputBytes", bytes: this.#outputBytes } satisfies FromWorker);
    this.#outputBytes = 0;
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  // --- requests -----------------------------------------------------------

  #read(
    id: number,
    afterSeq: number,
    maxBytes: number | null,
    waitMs: number,
    format: "json" | "bytes",
  ): void {
    const deadline = performance.now() + waitMs;
    const attempt = () => {
      const remaining = deadline - performance.now();
      if (!this.#log.hasNews(afterSeq) && remaining > 0) {
        const wake = () => {
          clearTimeout(timer);
          attempt();
        };
        const timer = setTimeout(() => {
          this.#waiters.delete(wake);
          attempt();
        }, remaining);
        this.#waiters.add(wake);
        return;
      }
      const result = format === "json"
        ? this.#log.readJson(afterSeq, maxBytes)
        : this.#log.readBytes(afterSeq, maxBytes);
      this.#post({ type: "reply", id, result });
    };
    attempt();
  }

  #write(data: Uint8Array, closeStdin: boolean, ack: boolean): void {
    const child = this.#child;
    if (child === null || !this.#stdinOpen) {
      // Dropped: still accounted, so the main thread's backlog goes back down.
      this.#written(data.byteLength, ack);
      return;
    }
    // A terminal stays writable after Ctrl-D; a pipe does not.
    if (closeStdin && !this.#spec.tty) this.#stdinOpen = false;
    // The stdin stream queues writes (and a close) in order: no chain of our own, which cost
    // five promises per write. An empty write (closeStdin only) is done when the last one is.
    const bytes = data.byteLength;
    const done = bytes > 0 ? (this.#lastWrite = child.write(data)) : this.#lastWrite;
    if (closeStdin) child.closeStdin();
    done.then(() => this.#written(bytes, ack), () => {
      if (this.#stdinOpen) {
        this.#stdinOpen = false;
        this.#post({ type: "stdinClosed" });
      }
      this.#written(bytes, ack);
    });
  }

  /**
   * Tells the main thread that bytes left the stdin backlog (until the
   * process closed): when asked to, or once enough went unreported.
   */
  #written(bytes: number, ack: boolean): void {
    this.#unreported += bytes;
    if (this.#unreported === 0 || this.#log.closedSeq !== null) return;
    if (ack || this.#unreported >= WRITTEN_REPORT_BYTES) {
      this.#post({ type: "written", bytes: this.#unreported });
      this.#unreported = 0;
    }
  }

  #terminate(signal: TerminateSignal): { running: boolean } {
    const child = this.#child;
    if (child === null || this.#log.closedSeq !== null) return { running: false };
    if (this.#log.exit !== null) {
      // Exited, but something left in its group holds the output open: kill that too.
      if (signal === "SIGKILL") {
        this.#terminated = true;
        child.kill(signal);
        setTimeout(() => child.cancelOutput(), TERMINATE_DRAIN_MS);
      }
      return { running: false };
    }
    if (signal === "SIGKILL") this.#terminated = true;
    child.kill(signal);
    return { running: true };
  }
}

/**
 * Sends an output event: chunks of 64 KiB and more are copied into a carrier
 * and transferred (the main thread copies them out and sends the carrier back).
 */
function sendChunk(
  port: MessagePort,
  g: number,
  output: { seq: number; stream: ProcessStream; data: Uint8Array },
): void {
  const { seq, stream, data } = output;
  if (data.byteLength >= TRANSFER_THRESHOLD) {
    const chunk = data.byteLength <= CARRIER_BYTES
      ? new Uint8Array(carriers.pop() ?? new ArrayBuffer(CARRIER_BYTES), 0, data.byteLength)
      : new Uint8Array(data.byteLength);
    chunk.set(data);
    port.postMessage({ type: "output", seq, stream, chunk, g } satisfies WorkerEvent, [
      chunk.buffer,
    ]);
  } else {
    port.postMessage({ type: "output", seq, stream, chunk: data, g } satisfies WorkerEvent);
  }
}

function describeSpawnError(spec: SpawnSpec, error: unknown): string {
  const reason = error instanceof Error ? error.message : String(error);
  return `failed to start ${JSON.stringify(spec.argv[0])} in ${spec.cwd}: ${reason}`;
}
