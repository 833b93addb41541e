/**
 * Splits a byte stream into lines for newline-delimited JSON-RPC (MCP stdio
 * framing, and the executor's own stdio mode): `\n`-terminated, one
 * trailing `\r` trimmed, with a cap on line length so a peer that never
 * ends its line cannot exhaust memory.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";

const NEWLINE = 10;
const CR = 13;

/** Thrown by {@link LineSplitter.push} when a line grows past the cap. */
export class LineTooLongError extends Error {
  /** Creates the error for a cap in bytes. */
  constructor(maxBytes: number) {
    super(`a line exceeded ${maxBytes} bytes without a newline`);
    this.name = "LineTooLongError";
  }
}

/** Accumulates chunks and hands out complete lines as bytes. */
export class LineSplitter {
  readonly #maxBytes: number;
  readonly #split: boolean;
  #parts: Uint8Array[] = [];
  #size = 0;

  /**
   * Creates a splitter with a line cap in bytes (default 8 MiB). Past the cap
   * it throws {@link LineTooLongError}, or with `split` hands out the bytes
   * so far as a line of their own (for logs).
   */
  constructor(maxBytes = 8 * 1024 * 1024, options: { split?: boolean } = {}) {
    this.#maxBytes = maxBytes;
    this.#split = options.split ?? false;
  }

  /** Feeds a chunk; calls `onLine` for each complete line (without its `\n` or `\r`). */
  push(chunk: Uint8Array, onLine: (line: Uint8Array) => void): void {
    let start = 0;
    let newline: number;
    while ((newline = chunk.indexOf(NEWLINE, start)) !== -1) {
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.#size === 0) {
        onLine(trimCr(piece));
      } else {
        this.#parts.push(piece);
        onLine(trimCr(this.#take()));
      }
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      if (this.#size + rest.byteLength > this.#maxBytes) {
        if (this.#split) {
          this.#parts.push(rest);
          onLine(this.#take());
          return;
        }
        this.#parts = [];
        this.#size = 0;
        throw new LineTooLongError(this.#maxBytes);
      }
      // Keep a copy: the caller's buffer may be reused.
      this.#parts.push(rest.slice());
      this.#size += rest.byteLength;
    }
  }

  /** Hands out a final unterminated line, if any (at end of stream). */
  flush(onLine: (line: Uint8Array) => void): void {
    if (this.#size > 0) onLine(trimCr(this.#take()));
  }

  #take(): Uint8Array {
    const parts = this.#parts;
    this.#parts = [];
    this.#size = 0;
    return concatBytes(parts);
  }
}

function trimCr(line: Uint8Array): Uint8Array {
  return line.byteLength > 0 && line[line.byteLength - 1] === CR ? line.subarray(0, -1) : line;
}

/**
 * Reads `reader` to its end through `splitter`, calling `onLine` for each
 * line (the last, unterminated one too). Rejects with the read's error or a
 * {@link LineTooLongError}; the reader is left as it is.
 */
export async function readLines(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  splitter: LineSplitter,
  onLine: (line: Uint8Array) => void,
): Promise<void> {
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    splitter.push(value, onLine);
  }
  splitter.flush(onLine);
}
