/**
 * Messages between the main thread and a process worker: types and one
 * constant, so the worker pulls in no code by importing this file.
 *
 * Main → worker goes through `worker.postMessage`; worker → main through
 * `self.postMessage`. A pre-serialized JSON-RPC notification (for executor
 * connections) travels worker → main as a bare string, so the main thread only
 * has to hand it to the socket. Messages the worker posts in one go (a
 * process's exit, close and `finished`) come as one array.
 *
 * @module
 */

import type {
  OutputChunk,
  ProcessEvent,
  SpawnErrorKind,
  TerminateSignal,
} from "../protocol/types.ts";
import type { SandboxWrapper } from "../sandbox/bwrap.ts";

/**
 * A worker reports finished stdin writes (`written`) once this many bytes
 * are unreported, or at once for a write sent with `ack` — which the main
 * thread asks for while its count of pending bytes is above this.
 * The main thread's count is thus never more than this above the truth.
 */
export const WRITTEN_REPORT_BYTES = 256 * 1024;

/**
 * Buffers at least this big are transferred between threads; smaller ones
 * are copied, which is cheaper for them (a `postMessage` of 100 bytes took
 * 16–20 µs transferred and 12 µs copied, measured).
 */
export const TRANSFER_THRESHOLD = 64 * 1024;

/**
 * Size of a carrier: a buffer that takes one big output frame (up to 1 MiB
 * of output plus its header) to the main thread and comes back (`recycle`)
 * once the frame was sent. Bulk output thus cycles through a few carriers: a
 * fresh megabyte per megabyte sent cost 256 page faults in the worker
 * (measured: every byte of a 50 MiB stream landed on a freshly faulted page).
 */
export const CARRIER_BYTES = 1024 * 1024 + 8192;

/** Everything the worker needs to spawn the child. The environment is final. */
export interface SpawnSpec {
  /** The caller's process id (used in notifications). */
  processId: string;
  /** Program and arguments. */
  argv: string[];
  /** Working directory. */
  cwd: string;
  /** The child's complete environment. */
  env: Record<string, string>;
  /** Run under a pseudo-terminal. */
  tty: boolean;
  /** Give the child a stdin pipe (non-tty only). */
  pipeStdin: boolean;
  /** argv[0] override. */
  arg0: string | null;
  /** The sandbox to run the child in (`bwrap` and its arguments), or null. */
  sandbox: SandboxWrapper | null;
  /**
   * Pre-serialized notifications for the main thread: none, JSON-RPC text,
   * or binary output frames (exit and close are always JSON).
   */
  wire: WireFormat;
  /** Retained output cap in bytes (1 MiB by default). */
  retainedBytes: number;
  /** Replay history cap in events (256 by default). */
  replayEvents: number;
  /** Send this process's events on the worker's events port, tagged with this generation. */
  events: number | null;
}

/** How a worker serializes notifications for an executor connection. */
export type WireFormat = "none" | "json" | "binary";

/** A process event on a worker's events port: tagged with its process's generation. */
export type WorkerEvent = ProcessEvent & { g: number };

/** The exit as recorded in the log. */
export interface ExitRecord {
  /** Sequence number of the exit event. */
  seq: number;
  /** Exit code; 128 + the signal's number when a signal killed it. */
  code: number;
  /** The signal that killed the process, if any. */
  signal: string | null;
  /** Sandboxed and failed in a way that looks like the sandbox's doing. */
  sandboxDenied: boolean;
}

/** The transferable state of a closed process. */
export interface OutputLogSnapshot {
  /** Retained chunks, oldest first. */
  chunks: OutputChunk[];
  /** Last assigned seq. */
  seq: number;
  /** The exit. */
  exit: ExitRecord | null;
  /** Seq of the close, when closed. */
  closedSeq: number | null;
}

/** Main thread → worker. */
export type ToWorker =
  /**
   * Once per worker: the port to send process events on, and whether to
   * spawn a throwaway child first (a worker kept idle: its first real start
   * then finds the spawn path warm).
   */
  | { type: "init"; events: MessagePort; prime: boolean }
  | { type: "start"; spec: SpawnSpec }
  | {
    type: "read";
    id: number;
    afterSeq: number;
    maxBytes: number | null;
    waitMs: number;
    /** `json`: reply with the read's JSON text (chunks in base64); `bytes`: a `ReadResponse`. */
    format: "json" | "bytes";
  }
  /**
   * `ack`: report this write (and every unreported one before it) with
   * `written` once done; other writes are reported in bulk only (see
   * {@link WRITTEN_REPORT_BYTES}), which spares a message per small write.
   */
  | { type: "write"; data: Uint8Array; closeStdin: boolean; ack: boolean }
  | { type: "terminate"; id: number; signal: TerminateSignal }
  | { type: "kill" }
  /** Stop reading the child's output (backpressure) until `resume`. */
  | { type: "pause" }
  | { type: "resume" }
  /** The attached connection changed: serialize output in this format from now on. */
  | { type: "wireFormat"; format: WireFormat }
  /** A carrier (see {@link CARRIER_BYTES}) whose frame was sent: reuse it. */
  | { type: "recycle"; buffer: ArrayBuffer };

/** Worker → main thread (besides bare notification strings). */
export type FromWorker =
  | { type: "ready" }
  | { type: "started"; pid: number }
  | { type: "startFailed"; message: string; kind: SpawnErrorKind }
  | { type: "reply"; id: number; result: unknown }
  | { type: "stdinClosed" }
  /**
   * The process closed: its last event was sent, and this is its final log
   * (the buffers transferred). The worker is idle again and ignores requests
   * for the process that arrive after this.
   */
  | { type: "finished"; snapshot: OutputLogSnapshot }
  /** Bytes of earlier writes that reached the child (or were dropped). */
  | { type: "written"; bytes: number }
  /** Output bytes produced since the last report (at most one a second, and before `finished`). */
  | { type: "outputBytes"; bytes: number };
