/**
 * Reading an MCP stdio server that runs as an {@link ExecProcess}: its
 * stdout as lines (deduplicated by seq, recovering with `read(afterSeq)`
 * when a subscriber lagged), its stderr logged line by line; and stopping it
 * the way the MCP spec asks (EOF, grace, SIGTERM, grace, SIGKILL).
 *
 * @module
 */

import type { ExecProcess } from "../exec/types.ts";
import type { WriteStatus } from "../protocol/types.ts";
import type { Logger } from "../log/logger.ts";
import { stopGracefully } from "../util/graceful_stop.ts";
import { LineSplitter } from "../util/lines.ts";
import { logStderrLine } from "./messages.ts";

/** Options of {@link readProcessLines}. */
export interface ProcessLinesOptions {
  /** Server name for logs. */
  name: string;
  /** Where stderr lines and warnings go. */
  log: Logger;
  /** Each stdout line, without its `\n` (and `\r`). */
  onLine(line: Uint8Array): void;
  /** Called after each event's lines were handed out (lets a writer flush). */
  afterEvent?(): void;
}

/** How the process ended. */
export interface ProcessLinesEnd {
  /** Exit code, when the exit was seen. */
  exitCode: number | null;
  /** The signal that ended the process, when the exit was seen and a signal did it. */
  signal: string | null;
  /** Why the process can no longer be observed (executor lost), if so. */
  failure: string | null;
}

/**
 * Reads until the process closed or failed, through a synchronous listener
 * (no queue, no lag). Rejects with `LineTooLongError` when a stdout line
 * exceeds 8 MiB.
 */
export function readProcessLines(
  process: ExecProcess,
  options: ProcessLinesOptions,
): Promise<ProcessLinesEnd> {
  const { name, log, onLine } = options;
  const stdout = new LineSplitter();
  const stderr = new LineSplitter(64 * 1024, { split: true });
  const onStderr = (line: Uint8Array) => logStderrLine(line, { name: name, log: log });
  const end: ProcessLinesEnd = { exitCode: null, signal: null, failure: null };
  return new Promise((resolve, reject) => {
    let done = false;
    let stop: (() => void) | null = null;
    const finish = (error?: unknown) => {
      done = true;
      stop?.();
      if (error !== undefined) {
        reject(error);
        return;
      }
      try {
        stdout.flush(onLine);
        stderr.flush(onStderr);
        options.afterEvent?.();
        resolve(end);
      } catch (flushError) {
        reject(flushError);
      }
    };
    stop = process.listen((event) => {
      if (done) return;
      try {
        switch (event.type) {
          case "output":
            if (event.stream === "stderr") stderr.push(event.chunk, onStderr);
            else stdout.push(event.chunk, onLine);
            break;
          case "exited":
            end.exitCode = event.exitCode;
            end.signal = event.signal;
            break;
          case "failed":
            end.failure = event.message;
            finish();
            return;
          case "closed":
            finish();
            return;
        }
        options.afterEvent?.();
      } catch (error) {
        finish(error);
      }
    });
    if (done) stop();
  });
}

/**
 * Stops a stdio server running as an {@link ExecProcess} with
 * {@link stopGracefully}; `gone` settles once it closed. When the executor
 * is lost, its session expiry kills the process.
 */
export function stopProcess(
  process: ExecProcess,
  options: { gone: Promise<unknown>; graceMs: number },
): Promise<void> {
  return stopGracefully({
    closeStdin: () => process.closeStdin(),
    signal: (signal) => process.terminate({ signal }),
    gone: options.gone,
  }, options.graceMs);
}

/**
 * Feeds a process's stdin with as few round trips as is safe: writes go out
 * without waiting for a status (`send`) until `windowBytes` are unconfirmed;
 * then one write waits for its status, which confirms everything before it
 * and lets the executor's backpressure reach the writer.
 */
export class StdinWriter {
  readonly #process: ExecProcess;
  readonly #window: number;
  #unconfirmed = 0;

  /** Wraps a process (default window 1 MiB). */
  constructor(process: ExecProcess, options: { windowBytes?: number } = {}) {
    this.#process = process;
    this.#window = options.windowBytes ?? 1024 * 1024;
  }

  /** Writes `data`; resolves with `accepted` at once, or with the status of a confirming write. */
  async write(data: Uint8Array): Promise<WriteStatus> {
    if (this.#unconfirmed + data.byteLength <= this.#window) {
      this.#unconfirmed += data.byteLength;
      this.#process.send(data);
      return "accepted";
    }
    this.#unconfirmed = 0;
    return await this.#process.write(data);
  }
}
