/**
 * The process interface shared by local and remote execution.
 *
 * @module
 */

import type {
  ProcessEvent,
  ReadResponse,
  StartParams,
  TerminateSignal,
  WriteStatus,
} from "../protocol/types.ts";

/**
 * An event of a process, in seq order (history first, then live): its
 * {@link ProcessEvent}s, and what only a subscriber sees.
 */
export type ExecProcessEvent =
  | ProcessEvent
  | {
    /** The process can no longer be observed (the executor connection was lost). Last event. */
    type: "failed";
    /** What happened. */
    message: string;
  }
  | {
    /**
     * This subscriber fell behind and `skipped` events were dropped from its
     * queue. Recover with `read({ afterSeq: lastSeq })`; later events follow.
     */
    type: "lagged";
    /** Number of dropped events. */
    skipped: number;
    /** Seq of the last event delivered before the gap. */
    lastSeq: number;
  };

/** Options of {@link ExecProcess.read}. */
export interface ReadOptions {
  /** Return chunks with a seq greater than this (default 0). */
  afterSeq?: number;
  /** Byte budget; at least one chunk is always returned. */
  maxBytes?: number;
  /** Long-poll: wait up to this long for something new (default 0). */
  waitMs?: number;
}

/** How a process ended. */
export interface ExitStatus {
  /** Exit code; 128 + the signal's number when a signal killed it. */
  exitCode: number;
  /** The signal that killed it, if any. */
  signal: string | null;
  /** Set (true) when the process was sandboxed, failed, and most likely by the sandbox's doing. */
  sandboxDenied?: boolean;
}

/** A running (or retained) process, local or on an executor. */
export interface ExecProcess {
  /** The id it was started under. */
  readonly processId: string;
  /**
   * Its events: the retained history first (even after it closed), then live
   * ones, ending after `closed` or `failed`. Each call is a new subscriber.
   */
  events(): AsyncIterableIterator<ExecProcessEvent>;
  /**
   * The same events to a synchronous handler: history first, then each live
   * event as it arrives. Nothing is queued, so it never lags: the lowest
   * overhead way to follow a process. Returns a function that stops it.
   */
  listen(handler: (event: ExecProcessEvent) => void): () => void;
  /** Retained output after `afterSeq`, optionally long-polling. */
  read(options?: ReadOptions): Promise<ReadResponse>;
  /**
   * Writes to the process's stdin (strings are UTF-8 encoded) and says what
   * happened. While more than 8 MiB wait for the child to read them, the
   * answer waits too: awaiting each write keeps memory bounded.
   */
  write(data: Uint8Array | string): Promise<WriteStatus>;
  /**
   * Writes to stdin without waiting for a status: the fastest way to feed a
   * process. Failures show up as its events (it closed, or the connection
   * failed). For large amounts use {@link write}, which applies backpressure.
   */
  send(data: Uint8Array | string): void;
  /** Closes the process's stdin, so it reads EOF (for a tty: sends Ctrl-D). */
  closeStdin(): Promise<WriteStatus>;
  /**
   * Signals the process group: SIGKILL by default (then it is gone); with a
   * gentler signal it may keep running. Resolves true if it was running.
   */
  terminate(options?: { signal?: TerminateSignal }): Promise<boolean>;
  /** Resolves when the process closed; rejects when it failed. */
  wait(): Promise<ExitStatus>;
}

/** Something that starts processes: {@link LocalExecBackend} or an executor connection. */
export interface ExecBackend {
  /** Starts a process; rejects with an `RpcError` (duplicate id, spawn failure…). */
  start(params: StartParams): Promise<ExecProcess>;
}
