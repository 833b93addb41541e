/**
 * Reading an MCP stdio server that runs as an {@link ExecProcess}: its
 * stdout as lines (deduplicated by seq, recovering with `read(afterSeq)`
 * when a subscriber lagged), its stderr logged line by line; and stopping it
 * the way the MCP spec asks (EOF, grace, SIGTERM, grace, SIGKILL).
 *
 * @module
 */

import type { ExecProcess, WriteStatus } from "../client/types.ts";
import type { Logger } from "../log/logger.ts";
import { LineSplitter } from "./line_splitter.ts";
import { logStderrLine } from "./messages.ts";

/** Options of {@link readProcessLines}. */
export interface ProcessLinesOptions {
  /** Server name for logs. */
  name: string;
  /** Where stderr lines and warnings go. */
  log: Logger;
  /** Each stdout line, without its `\n` (and `\r`). */
  onLine(line: Uint8Array): void;
  /** Awaited after each event's lines were handed out (lets a writer flush). */
  afterEvent?(): Promise<void>;
}

/** How the process ended. */
export interface ProcessLinesEnd {
  /** Exit code, when the exit was seen. */
  exitCode: number | null;
  /** Why the process can no longer be observed (executor lost), if so. */
  failure: string | null;
}

/**
 * Reads until the process closed or failed. Throws `LineTooLongError` (after
 * releasing the subscription) when a stdout line exceeds 8 MiB.
 */
export async function readProcessLines(
  process: ExecProcess,
  options: ProcessLinesOptions,
): Promise<ProcessLinesEnd> {
  const { name, log, onLine } = options;
  const stdout = new LineSplitter();
  const stderr = new LineSplitter(64 * 1024, { split: true });
  const onStderr = (line: Uint8Array) => logStderrLine(line, name, log);
  const end: ProcessLinesEnd = { exitCode: null, failure: null };
  let lastSeq = 0;
  const feed = (seq: number, stream: string, chunk: Uint8Array) => {
    if (seq <= lastSeq) return;
    lastSeq = seq;
    if (stream === "stderr") stderr.push(chunk, onStderr);
    else stdout.push(chunk, onLine);
  };
  const events = process.events();
  try {
    for await (const event of events) {
      switch (event.type) {
        case "output":
          feed(event.seq, event.stream, event.chunk);
          break;
        case "exited":
          lastSeq = Math.max(lastSeq, event.seq);
          end.exitCode = event.exitCode;
          break;
        case "closed":
          lastSeq = Math.max(lastSeq, event.seq);
          break;
        case "failed":
          end.failure = event.message;
          break;
        case "lagged": {
          log.warn(`MCP server ${name}: fell ${event.skipped} events behind; catching up`);
          const response = await process.read({ afterSeq: lastSeq });
          for (const c of response.chunks) feed(c.seq, c.stream, c.chunk);
          if (response.failure !== null || response.closed) {
            end.exitCode ??= response.exitCode;
            end.failure ??= response.failure;
            await events.return?.();
          }
          break;
        }
      }
      await options.afterEvent?.();
    }
    stdout.flush(onLine);
    stderr.flush(onStderr);
    await options.afterEvent?.();
    return end;
  } catch (error) {
    await events.return?.();
    throw error;
  }
}

/**
 * Stops a stdio server: closes its stdin, waits `graceMs` for it to close,
 * sends SIGTERM to its group, waits again, then SIGKILL. Errors (a lost
 * executor) end the attempt: the session expiry kills the process then.
 */
export async function stopGracefully(
  process: ExecProcess,
  closedWithin: (ms: number) => Promise<boolean>,
  graceMs: number,
): Promise<void> {
  try {
    await process.closeStdin();
    if (await closedWithin(graceMs)) return;
    await process.terminate({ signal: "SIGTERM" });
    if (await closedWithin(graceMs)) return;
    await process.terminate();
  } catch {
    // The executor is gone.
  }
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
