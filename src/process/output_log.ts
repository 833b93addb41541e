/**
 * The sequence-numbered record of one process: retained output (bounded in
 * bytes, oldest evicted first), the exit and the close. It answers
 * `process/read` and builds the replay history for late subscribers.
 *
 * Used inside the process worker while the process lives, and on the main
 * thread (as an archive) once the process closed and its worker was released.
 *
 * @module
 */

import type { OutputChunk, ProcessEvent, ProcessStream, ReadResponse } from "../protocol/types.ts";
import type { ExitRecord, OutputLogSnapshot } from "./worker_protocol.ts";

/** Limits of a log. */
export interface OutputLogLimits {
  /** Retained output cap in bytes. */
  retainedBytes: number;
  /** Replay history cap in output events. */
  replayEvents: number;
}

/** An output chunk on the wire: the bytes in standard base64. */
type WireChunk = Omit<OutputChunk, "chunk"> & { chunk: string };

function exitedEvent(exit: ExitRecord): ProcessEvent {
  return {
    type: "exited",
    seq: exit.seq,
    exitCode: exit.code,
    signal: exit.signal,
    ...(exit.sandboxDenied ? { sandboxDenied: true } : {}),
  };
}

/** Sequence-numbered retained output of one process. */
export class OutputLog {
  readonly #limits: OutputLogLimits;
  #chunks: OutputChunk[] = [];
  #head = 0;
  #bytes = 0;
  #seq = 0;
  #exit: ExitRecord | null = null;
  #closedSeq: number | null = null;
  /** Called with each evicted chunk's bytes (the worker recycles its gather buffers). */
  onEvict: ((data: Uint8Array) => void) | null = null;

  /** Creates an empty log, or one restored from a snapshot. */
  constructor(limits: OutputLogLimits, snapshot?: OutputLogSnapshot) {
    this.#limits = limits;
    if (snapshot !== undefined) {
      this.#chunks = snapshot.chunks;
      this.#bytes = snapshot.chunks.reduce((sum, c) => sum + c.chunk.byteLength, 0);
      this.#seq = snapshot.seq;
      this.#exit = snapshot.exit;
      this.#closedSeq = snapshot.closedSeq;
    }
  }

  /** The exit, once recorded. */
  get exit(): ExitRecord | null {
    return this.#exit;
  }

  /** The seq of the close, once recorded. */
  get closedSeq(): number | null {
    return this.#closedSeq;
  }

  /** Appends an output chunk and returns its seq. */
  appendOutput(stream: ProcessStream, data: Uint8Array): number {
    const seq = ++this.#seq;
    this.#chunks.push({ seq, stream, chunk: data });
    this.#bytes += data.byteLength;
    const cap = this.#limits.retainedBytes;
    while (this.#bytes > cap && this.#head < this.#chunks.length) {
      const evicted = this.#chunks[this.#head].chunk;
      this.#bytes -= evicted.byteLength;
      this.#head++;
      this.onEvict?.(evicted);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return seq;
  }

  /** Records the exit and returns it. */
  recordExit(code: number, signal: string | null, sandboxDenied = false): ExitRecord {
    this.#exit = { seq: ++this.#seq, code, signal, sandboxDenied };
    return this.#exit;
  }

  /** Records the close and returns its seq. */
  recordClose(): number {
    this.#closedSeq = ++this.#seq;
    return this.#closedSeq;
  }

  /** True when a reader after `afterSeq` has something new: output, a newer exit, or the close. */
  hasNews(afterSeq: number): boolean {
    if (this.#closedSeq !== null) return true;
    if (this.#exit !== null && this.#exit.seq > afterSeq) return true;
    const chunks = this.#chunks;
    return chunks.length > this.#head && chunks[chunks.length - 1].seq > afterSeq;
  }

  /** The retained output's bytes, oldest first. */
  *retainedOutput(): Generator<Uint8Array> {
    for (let i = this.#head; i < this.#chunks.length; i++) yield this.#chunks[i].chunk;
  }

  /** Chunks after `afterSeq` within the byte budget (at least one when any). */
  select(afterSeq: number, maxBytes: number | null): OutputChunk[] {
    const chunks = this.#chunks;
    let lo = this.#head;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid].seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    const selected: OutputChunk[] = [];
    let bytes = 0;
    for (let i = lo; i < chunks.length; i++) {
      const size = chunks[i].chunk.byteLength;
      if (maxBytes !== null && selected.length > 0 && bytes + size > maxBytes) break;
      selected.push(chunks[i]);
      bytes += size;
      if (maxBytes !== null && bytes >= maxBytes) break;
    }
    return selected;
  }

  #status(selected: OutputChunk[]) {
    return {
      nextSeq: selected.length > 0 ? selected[selected.length - 1].seq + 1 : this.#seq + 1,
      exited: this.#exit !== null,
      exitCode: this.#exit?.code ?? null,
      closed: this.#closedSeq !== null,
      exitSeq: this.#exit?.seq ?? null,
      exitSignal: this.#exit?.signal ?? null,
      closedSeq: this.#closedSeq,
      sandboxDenied: this.#exit?.sandboxDenied ?? false,
    };
  }

  /** A `process/read` result as JSON text (chunks in base64). */
  readJson(afterSeq: number, maxBytes: number | null): string {
    const selected = this.select(afterSeq, maxBytes);
    // The wire form of a ReadResponse (schemas.ts parses it back on the client).
    const result: Omit<ReadResponse, "chunks"> & { chunks: WireChunk[] } = {
      chunks: selected.map((c) => ({ seq: c.seq, stream: c.stream, chunk: c.chunk.toBase64() })),
      ...this.#status(selected),
      failure: null,
    };
    return JSON.stringify(result);
  }

  /** A read result with the chunks as bytes (the log's own: do not modify them). */
  readBytes(afterSeq: number, maxBytes: number | null): ReadResponse {
    const selected = this.select(afterSeq, maxBytes);
    return { chunks: selected.map((c) => ({ ...c })), ...this.#status(selected), failure: null };
  }

  /** Replay history: the newest retained output (bounded), the exit and the close, in seq order. */
  history(): ProcessEvent[] {
    const events: ProcessEvent[] = [];
    const exit = this.#exit;
    let exitPending = exit !== null;
    const first = Math.max(this.#head, this.#chunks.length - this.#limits.replayEvents);
    for (let i = first; i < this.#chunks.length; i++) {
      const c = this.#chunks[i];
      if (exitPending && exit!.seq < c.seq) {
        events.push(exitedEvent(exit!));
        exitPending = false;
      }
      events.push({ type: "output", seq: c.seq, stream: c.stream, chunk: c.chunk });
    }
    if (exitPending) {
      events.push(exitedEvent(exit!));
    }
    if (this.#closedSeq !== null) events.push({ type: "closed", seq: this.#closedSeq });
    return events;
  }

  /** Hands the state over (buffers may then be transferred). */
  snapshot(): OutputLogSnapshot {
    return {
      chunks: this.#chunks.slice(this.#head),
      seq: this.#seq,
      exit: this.#exit,
      closedSeq: this.#closedSeq,
    };
  }
}
