/**
 * Outbound flow control of one connection. When the peer reads slower than
 * the session's processes write, the connection's queue grows: past half of
 * `maxBufferedBytes` the processes' output stops being read (their pipes
 * fill and they block) until the queue drained to a quarter; a queue that
 * makes no progress for `stallTimeoutMs` closes the connection; and while
 * the queue is over `maxBufferedBytes`, requests are refused.
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";
import type { TextChannel } from "../transport/channel.ts";

/** Options of {@link OutboundFlow}. */
export interface OutboundFlowOptions {
  /** Outbound bytes the connection may queue. */
  maxBufferedBytes: number;
  /** Close a connection whose queue made no progress for this long. */
  stallTimeoutMs: number;
  /** Logs. */
  log: Logger;
  /** Stops reading the processes' output. */
  pause(): void;
  /** Reads the processes' output again. */
  resume(): void;
}

/** How often a paused connection's queue is looked at. */
const POLL_MS = 10;

/** The outbound queue of one connection, watched. */
export class OutboundFlow {
  readonly #channel: TextChannel;
  readonly #options: OutboundFlowOptions;
  readonly #highWater: number;
  #throttle: ReturnType<typeof setInterval> | null = null;

  /** Watches `channel`'s queue. */
  constructor(channel: TextChannel, options: OutboundFlowOptions) {
    this.#channel = channel;
    this.#options = options;
    this.#highWater = options.maxBufferedBytes / 2;
  }

  /** True while the queue is over `maxBufferedBytes`: answer nothing big until the peer reads. */
  get full(): boolean {
    return this.#channel.bufferedAmount > this.#options.maxBufferedBytes;
  }

  /** Call after each send: pauses the processes once the queue passed its high-water mark. */
  sent(): void {
    if (this.#throttle === null && this.#channel.bufferedAmount > this.#highWater) this.#pause();
  }

  /**
   * Resolves once the queue is below its high-water mark (at once when it
   * is), or the connection ended: a producer that can wait (a streamed HTTP
   * body) waits here instead of filling the queue.
   */
  async drained(signal: AbortSignal): Promise<void> {
    while (this.#channel.bufferedAmount > this.#highWater && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The connection ended: stop watching, and let the processes run. */
  stop(): void {
    if (this.#throttle === null) return;
    clearInterval(this.#throttle);
    this.#throttle = null;
    this.#options.resume();
  }

  #pause(): void {
    const { log, stallTimeoutMs } = this.#options;
    this.#options.pause();
    const low = this.#highWater / 2;
    let lowest = this.#channel.bufferedAmount;
    let progressAt = performance.now();
    log.debug(`${this.#channel.peer} reads slowly: pausing process output`);
    this.#throttle = setInterval(() => {
      const buffered = this.#channel.bufferedAmount;
      if (buffered <= low) {
        this.stop();
      } else if (buffered < lowest) {
        lowest = buffered;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > stallTimeoutMs) {
        log.warn(
          `${this.#channel.peer} read nothing for ${stallTimeoutMs} ms with ${buffered} bytes queued: closing it`,
        );
        this.stop();
        this.#channel.close(1008, "the client stopped reading (--max-buffered-bytes)");
      }
    }, POLL_MS);
  }
}
