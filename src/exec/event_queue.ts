/**
 * A bounded async iterator of process events for one subscriber. When the
 * consumer falls behind, the oldest queued events are dropped and a `lagged`
 * event tells it where to resume with `read(afterSeq)`.
 *
 * @module
 */

import type { ExecProcessEvent } from "./types.ts";

/** Most events one subscriber may have queued. */
export const EVENT_QUEUE_MAX_EVENTS = 4096;
/** Most output bytes one subscriber may have queued. */
export const EVENT_QUEUE_MAX_BYTES = 16 * 1024 * 1024;

/** Options of {@link EventQueue}. */
export interface EventQueueOptions {
  /** Called once when the consumer stops (return) or the stream ended. */
  onDone?: () => void;
  /** Queue bound in events (default 4096). */
  maxEvents?: number;
  /** Queue bound in output bytes (default 16 MiB). */
  maxBytes?: number;
}

function sizeOf(event: ExecProcessEvent): number {
  return event.type === "output" ? event.chunk.byteLength : 0;
}

/** One subscriber's queue, consumed with `for await`. */
export class EventQueue implements AsyncIterableIterator<ExecProcessEvent> {
  readonly #options: EventQueueOptions;
  #queue: ExecProcessEvent[] = [];
  #head = 0;
  #bytes = 0;
  #skipped = 0;
  #lastSeq = 0;
  #ended = false;
  #done = false;
  #waiter: ((result: IteratorResult<ExecProcessEvent>) => void) | null = null;

  /** Creates an empty queue. */
  constructor(options: EventQueueOptions = {}) {
    this.#options = options;
  }

  /** Adds an event; `closed` and `failed` end the stream after they are consumed. */
  push(event: ExecProcessEvent): void {
    if (this.#ended) return;
    if (event.type === "closed" || event.type === "failed") this.#ended = true;
    if (this.#waiter !== null && this.#head === this.#queue.length && this.#skipped === 0) {
      const waiter = this.#waiter;
      this.#waiter = null;
      this.#delivered(event);
      waiter({ value: event, done: false });
      return;
    }
    this.#queue.push(event);
    this.#bytes += sizeOf(event);
    const maxEvents = this.#options.maxEvents ?? EVENT_QUEUE_MAX_EVENTS;
    const maxBytes = this.#options.maxBytes ?? EVENT_QUEUE_MAX_BYTES;
    while (
      this.#queue.length - this.#head > 1 &&
      (this.#queue.length - this.#head > maxEvents || this.#bytes > maxBytes)
    ) {
      const dropped = this.#queue[this.#head++];
      this.#bytes -= sizeOf(dropped);
      this.#skipped++;
    }
  }

  /** Ends the stream without a terminal event. */
  end(): void {
    this.#ended = true;
    if (this.#waiter !== null && this.#head === this.#queue.length) {
      this.#finish();
    }
  }

  /** Next event. */
  next(): Promise<IteratorResult<ExecProcessEvent>> {
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#skipped > 0) {
      const lagged: ExecProcessEvent = {
        type: "lagged",
        skipped: this.#skipped,
        lastSeq: this.#lastSeq,
      };
      this.#skipped = 0;
      return Promise.resolve({ value: lagged, done: false });
    }
    if (this.#head < this.#queue.length) {
      const event = this.#queue[this.#head++];
      this.#bytes -= sizeOf(event);
      if (this.#head === this.#queue.length) {
        this.#queue = [];
        this.#head = 0;
      }
      this.#delivered(event);
      return Promise.resolve({ value: event, done: false });
    }
    if (this.#ended) {
      this.#finish();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Stops consuming; the subscription is released. */
  return(): Promise<IteratorResult<ExecProcessEvent>> {
    this.#ended = true;
    this.#queue = [];
    this.#head = 0;
    this.#finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ExecProcessEvent> {
    return this;
  }

  #delivered(event: ExecProcessEvent): void {
    if ("seq" in event) this.#lastSeq = event.seq;
    if (event.type === "closed" || event.type === "failed") {
      // The terminal event was handed out: the next call ends the iteration.
      this.#ended = true;
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.({ value: undefined, done: true });
    this.#options.onDone?.();
  }
}
