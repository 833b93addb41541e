/**
 * The events channel of one process worker: a `MessagePort` made once per
 * worker (not per process), on which the worker sends the events of each
 * process it runs, tagged with that process's generation number. The router
 * hands each event to the sink registered for its generation, so a late
 * event of a previous process can never reach the next one.
 *
 * @module
 */

import type { ProcessEvent } from "../../protocol/types.ts";
import { CARRIER_BYTES, type WorkerEvent } from "../worker_protocol.ts";

/** Receives one process's events. */
export type EventHandler = (event: ProcessEvent) => void;

let nextGeneration = 1;

/** Routes a worker's tagged events to per-process handlers. */
export class EventRouter {
  readonly #port: MessagePort;
  readonly #handlers = new Map<number, EventHandler>();
  #closing = false;

  /** Listens on the main thread's end of a worker's events channel. */
  constructor(port: MessagePort) {
    this.#port = port;
    port.onmessage = (message: MessageEvent<WorkerEvent | WorkerEvent[]>) => {
      const data = message.data;
      // A process's exit and close usually come together, as one message.
      if (Array.isArray(data)) {
        for (const event of data) this.#route(event);
      } else {
        this.#route(data);
      }
    };
  }

  #route(event: Partial<WorkerEvent>): void {
    if (event.type === "output" && event.chunk!.buffer.byteLength === CARRIER_BYTES) {
      // A carrier: copy the chunk out (the copy is the receiver's to keep) and send it back.
      const carrier = event.chunk!.buffer as ArrayBuffer;
      event.chunk = event.chunk!.slice();
      this.#port.postMessage({ buffer: carrier }, [carrier]);
    }
    const handler = this.#handlers.get(event.g!);
    // The tag is the router's business only.
    delete event.g;
    handler?.(event as ProcessEvent);
  }

  /** Registers a handler; returns the generation to tag the process's events with. */
  add(handler: EventHandler): number {
    const generation = nextGeneration++;
    this.#handlers.set(generation, handler);
    return generation;
  }

  /** Forgets a generation (after its terminal event). */
  delete(generation: number): void {
    this.#handlers.delete(generation);
    if (this.#closing && this.#handlers.size === 0) this.#port.close();
  }

  /**
   * Closes the channel once no process is waiting for events on it: a
   * worker discarded right after its process closed may still have that
   * process's last events queued here.
   */
  close(): void {
    this.#closing = true;
    if (this.#handlers.size === 0) this.#port.close();
  }
}
