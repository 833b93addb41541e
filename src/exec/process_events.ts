/**
 * The client-side event stream of one process, shared by local and remote
 * processes: it puts events in seq order (dropping duplicates, parking early
 * ones), keeps a bounded replay history for late subscribers, and fans
 * events out to subscriber queues until `closed` or `failed`.
 *
 * @module
 */

import { EVENT_QUEUE_MAX_BYTES, EVENT_QUEUE_MAX_EVENTS, EventQueue } from "./event_queue.ts";
import type { ExecProcessEvent } from "./types.ts";
import type { ProcessEvent, ReadResponse } from "../protocol/types.ts";

/** Replay history bound: events. */
const HISTORY_MAX_EVENTS = 256;
/** Replay history bound: output bytes. */
const HISTORY_MAX_BYTES = 1024 * 1024;
/**
 * Until the first subscriber comes, up to this much is kept: output (in
 * chunks of up to 1 MiB) may arrive before `start` has even returned, and the
 * first subscriber must see it from the beginning.
 */
const UNSUBSCRIBED_MAX_BYTES = EVENT_QUEUE_MAX_BYTES;
/** The same in events (a first subscriber's queue holds all of it). */
const UNSUBSCRIBED_MAX_EVENTS = EVENT_QUEUE_MAX_EVENTS;
/** How long an out-of-order event may wait for the seqs before it. */
const GAP_RECOVERY_MS = 250;

/** Options of {@link ProcessEvents}. */
export interface ProcessEventsOptions {
  /** Called once after the terminal event (`closed` or `failed`) was published. */
  onEnded?: () => void;
  /** Reads retained output after a seq, to fill a gap that notifications left. */
  recover?: (afterSeq: number) => Promise<ReadResponse>;
}

/** Ordered, replayable events of one process. */
export class ProcessEvents {
  readonly #options: ProcessEventsOptions;
  #lastSeq = 0;
  #parked = new Map<number, ProcessEvent>();
  #gapTimer: ReturnType<typeof setTimeout> | null = null;
  #history: ExecProcessEvent[] = [];
  #historyHead = 0;
  #historyBytes = 0;
  #subscribers = new Set<{ push(event: ExecProcessEvent): void }>();
  #ended = false;
  #failure: string | null = null;
  #subscribed = false;

  /** Creates an empty stream. */
  constructor(options: ProcessEventsOptions = {}) {
    this.#options = options;
  }

  /** The last published seq. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The failure message once `failed` was published. */
  get failure(): string | null {
    return this.#failure;
  }

  /** Takes an event: publishes it in seq order, drops duplicates, parks early ones. */
  accept(event: ProcessEvent): void {
    if (this.#ended || event.seq <= this.#lastSeq) return;
    if (event.seq !== this.#lastSeq + 1) {
      this.#parked.set(event.seq, event);
      if (this.#options.recover !== undefined) {
        this.#gapTimer ??= setTimeout(() => this.#recoverGap(), GAP_RECOVERY_MS);
      }
      return;
    }
    this.#publish(event);
    let next: ProcessEvent | undefined;
    while ((next = this.#parked.get(this.#lastSeq + 1)) !== undefined) {
      this.#parked.delete(next.seq);
      this.#publish(next);
    }
    if (this.#parked.size === 0 && this.#gapTimer !== null) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = null;
    }
  }

  /** Publishes `failed`: every subscription ends with it. */
  fail(message: string): void {
    if (this.#ended) return;
    this.#failure = message;
    this.#end({ type: "failed", message });
  }

  /** A new subscriber: history first, then live events. */
  subscribe(): AsyncIterableIterator<ExecProcessEvent> {
    this.#subscribed = true;
    const queue: EventQueue = new EventQueue({ onDone: () => this.#subscribers.delete(queue) });
    for (let i = this.#historyHead; i < this.#history.length; i++) queue.push(this.#history[i]);
    if (this.#ended) queue.end();
    else this.#subscribers.add(queue);
    return queue;
  }

  /**
   * A synchronous listener: history first, then each live event as it is
   * published. It never lags (nothing is queued). Returns a function that
   * stops it.
   */
  listen(handler: (event: ExecProcessEvent) => void): () => void {
    this.#subscribed = true;
    let active = true;
    const listener = {
      push(event: ExecProcessEvent) {
        if (active) handler(event);
      },
    };
    for (let i = this.#historyHead; i < this.#history.length && active; i++) {
      listener.push(this.#history[i]);
    }
    if (!this.#ended) this.#subscribers.add(listener);
    return () => {
      active = false;
      this.#subscribers.delete(listener);
    };
  }

  /**
   * Publishes what a `read` found (retained chunks, and with execbridge
   * executors the exit and the close with their seqs) together with any
   * events parked meanwhile, in seq order. Seqs evicted from the executor's
   * retention stay missing: the stream continues after the gap.
   */
  catchUp(response: ReadResponse): void {
    if (this.#ended) return;
    const found = new Map<number, ProcessEvent>(this.#parked);
    this.#parked.clear();
    for (const c of response.chunks) {
      found.set(c.seq, { type: "output", seq: c.seq, stream: c.stream, chunk: c.chunk });
    }
    if (response.exitSeq != null && response.exitCode !== null) {
      found.set(response.exitSeq, {
        type: "exited",
        seq: response.exitSeq,
        exitCode: response.exitCode,
        signal: response.exitSignal ?? null,
        ...(response.sandboxDenied ? { sandboxDenied: true } : {}),
      });
    }
    if (response.closedSeq != null) {
      found.set(response.closedSeq, { type: "closed", seq: response.closedSeq });
    }
    for (const event of [...found.values()].sort((a, b) => a.seq - b.seq)) {
      if (this.#ended) break;
      if (event.seq > this.#lastSeq) this.#publish(event);
    }
    if (this.#gapTimer !== null) clearTimeout(this.#gapTimer);
    this.#gapTimer = null;
  }

  /**
   * Missing seqs did not arrive (notifications were dropped while the session
   * was detached): read what the executor retained and catch up.
   */
  async #recoverGap(): Promise<void> {
    this.#gapTimer = null;
    if (this.#ended || this.#parked.size === 0) return;
    try {
      this.catchUp(await this.#options.recover!(this.#lastSeq));
    } catch {
      // Nothing to recover from: publish what we have.
      this.catchUp({
        chunks: [],
        nextSeq: 0,
        exited: false,
        exitCode: null,
        closed: false,
        failure: null,
      });
    }
  }

  #publish(event: ProcessEvent): void {
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
    this.#options.onEnded?.();
  }

  #remember(event: ExecProcessEvent): void {
    this.#history.push(event);
    if (event.type === "output") this.#historyBytes += event.chunk.byteLength;
    const maxBytes = this.#subscribed ? HISTORY_MAX_BYTES : UNSUBSCRIBED_MAX_BYTES;
    const maxEvents = this.#subscribed ? HISTORY_MAX_EVENTS : UNSUBSCRIBED_MAX_EVENTS;
    while (
      this.#history.length - this.#historyHead > 1 &&
      (this.#history.length - this.#historyHead > maxEvents || this.#historyBytes > maxBytes)
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
