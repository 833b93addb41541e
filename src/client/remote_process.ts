/**
 * A process on an executor, seen from the client: it reorders pushed events
 * by seq (dropping duplicates), keeps a bounded replay history for late
 * subscribers, and turns a lost connection into a `failed` event and
 * synthesized read results.
 *
 * @module
 */

import { results } from "../protocol/schemas.ts";
import type { StartParams } from "../protocol/types.ts";
import { DisconnectedError, type RpcClient } from "../rpc/rpc_client.ts";
import { EventQueue } from "./event_queue.ts";
import type {
  ExecProcess,
  ExecProcessEvent,
  ExitStatus,
  ReadOptions,
  ReadResponse,
  TerminateSignal,
  WriteStatus,
} from "./types.ts";
import { waitForExit } from "./wait.ts";

/** A sequenced event as routed from a notification. */
export type SequencedEvent = Exclude<ExecProcessEvent, { type: "failed" | "lagged" }>;

/** Replay history bound: events. */
const HISTORY_MAX_EVENTS = 256;
/** Replay history bound: output bytes. */
const HISTORY_MAX_BYTES = 1024 * 1024;
/** How long an out-of-order event may wait for the seqs before it. */
const GAP_RECOVERY_MS = 250;

const encoder = new TextEncoder();

/** A process on an executor. */
export class RemoteProcess implements ExecProcess {
  readonly processId: string;
  readonly #rpc: RpcClient;
  readonly #onClosed: () => void;
  #lastSeq = 0;
  #parked = new Map<number, SequencedEvent>();
  #gapTimer: ReturnType<typeof setTimeout> | null = null;
  #history: ExecProcessEvent[] = [];
  #historyHead = 0;
  #historyBytes = 0;
  #subscribers = new Set<EventQueue>();
  #ended = false;
  #failure: string | null = null;

  /** Creates the client-side record; the caller routes notifications to {@link accept}. */
  constructor(params: StartParams, rpc: RpcClient, onClosed: () => void) {
    this.processId = params.processId;
    this.#rpc = rpc;
    this.#onClosed = onClosed;
  }

  /** Takes a pushed event: publishes it in seq order, drops duplicates, parks early ones. */
  accept(event: SequencedEvent): void {
    if (this.#ended || event.seq <= this.#lastSeq) return;
    if (event.seq !== this.#lastSeq + 1) {
      this.#parked.set(event.seq, event);
      this.#gapTimer ??= setTimeout(() => this.#recoverGap(), GAP_RECOVERY_MS);
      return;
    }
    this.#publish(event);
    this.#drainParked();
  }

  /** Marks the process failed (connection lost): a `failed` event ends every subscription. */
  fail(message: string): void {
    if (this.#ended) return;
    this.#failure = message;
    this.#end({ type: "failed", message });
  }

  events(): AsyncIterableIterator<ExecProcessEvent> {
    const queue: EventQueue = new EventQueue({ onDone: () => this.#subscribers.delete(queue) });
    for (let i = this.#historyHead; i < this.#history.length; i++) queue.push(this.#history[i]);
    if (this.#ended) queue.end();
    else this.#subscribers.add(queue);
    return queue;
  }

  async read(options: ReadOptions = {}): Promise<ReadResponse> {
    if (this.#failure !== null) return this.#failedRead();
    let raw: unknown;
    try {
      raw = await this.#rpc.call("process/read", {
        processId: this.processId,
        afterSeq: options.afterSeq ?? 0,
        maxBytes: options.maxBytes,
        waitMs: options.waitMs ?? 0,
      });
    } catch (error) {
      if (error instanceof DisconnectedError) {
        this.fail(error.message);
        return this.#failedRead();
      }
      throw error;
    }
    const result = results.read.parse(raw);
    return {
      chunks: result.chunks.map((c) => ({
        seq: c.seq,
        stream: c.stream,
        chunk: Uint8Array.fromBase64(c.chunk),
      })),
      nextSeq: result.nextSeq,
      exited: result.exited,
      exitCode: result.exitCode,
      closed: result.closed,
      failure: result.failure ?? null,
    };
  }

  async write(data: Uint8Array | string): Promise<WriteStatus> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const raw = await this.#rpc.call("process/write", {
      processId: this.processId,
      chunk: bytes.toBase64(),
    });
    return results.write.parse(raw).status;
  }

  async closeStdin(): Promise<WriteStatus> {
    const raw = await this.#rpc.call("process/write", {
      processId: this.processId,
      chunk: "",
      closeStdin: true,
    });
    return results.write.parse(raw).status;
  }

  async terminate(options: { signal?: TerminateSignal } = {}): Promise<boolean> {
    const raw = await this.#rpc.call("process/terminate", {
      processId: this.processId,
      signal: options.signal,
    });
    return results.terminate.parse(raw).running;
  }

  wait(): Promise<ExitStatus> {
    return waitForExit(this.events());
  }

  #failedRead(): ReadResponse {
    return {
      chunks: [],
      nextSeq: this.#lastSeq + 1,
      exited: true,
      exitCode: null,
      closed: true,
      failure: this.#failure,
    };
  }

  #drainParked(): void {
    let next: SequencedEvent | undefined;
    while ((next = this.#parked.get(this.#lastSeq + 1)) !== undefined) {
      this.#parked.delete(next.seq);
      this.#publish(next);
    }
    if (this.#parked.size === 0 && this.#gapTimer !== null) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = null;
    }
  }

  /**
   * Missing seqs did not arrive (notifications were dropped while the session
   * was detached): fetch the retained output, then publish what is parked.
   */
  async #recoverGap(): Promise<void> {
    this.#gapTimer = null;
    if (this.#ended || this.#parked.size === 0) return;
    try {
      const response = await this.read({ afterSeq: this.#lastSeq });
      for (const c of response.chunks) {
        if (c.seq > this.#lastSeq) {
          this.#publish({ type: "output", seq: c.seq, stream: c.stream, chunk: c.chunk });
        }
      }
    } catch {
      // Nothing more to recover; publish what we have.
    }
    const parked = [...this.#parked.values()].sort((a, b) => a.seq - b.seq);
    this.#parked.clear();
    for (const event of parked) {
      if (event.seq > this.#lastSeq) this.#publish(event);
    }
  }

  #publish(event: SequencedEvent): void {
    this.#lastSeq = event.seq;
    this.#remember(event);
    if (event.type === "closed") {
      this.#end(event);
      return;
    }
    for (const queue of this.#subscribers) queue.push(event);
  }

  #end(event: ExecProcessEvent): void {
    this.#ended = true;
    if (event.type === "failed") this.#remember(event);
    if (this.#gapTimer !== null) clearTimeout(this.#gapTimer);
    this.#gapTimer = null;
    this.#parked.clear();
    for (const queue of this.#subscribers) queue.push(event);
    this.#subscribers.clear();
    this.#onClosed();
  }

  #remember(event: ExecProcessEvent): void {
    this.#history.push(event);
    if (event.type === "output") this.#historyBytes += event.chunk.byteLength;
    while (
      this.#history.length - this.#historyHead > 1 &&
      (this.#history.length - this.#historyHead > HISTORY_MAX_EVENTS ||
        this.#historyBytes > HISTORY_MAX_BYTES)
    ) {
      const dropped = this.#history[this.#historyHead++];
      if (dropped.type === "output") this.#historyBytes -= dropped.chunk.byteLength;
    }
    if (this.#historyHead > 1024) {
      this.#history = this.#history.slice(this.#historyHead);
      this.#historyHead = 0;
    }
  }
}
