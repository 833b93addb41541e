/**
 * Pre-started process workers. Starting a Web Worker costs 12–20 ms; a process
 * start takes a warm one from the pool and the pool refills in the background.
 * Workers that ran a process come back after `release` and are reused.
 *
 * After a burst that needed more workers than the pool had, the pool keeps
 * making workers in the background until it holds as many as the burst used
 * at its peak (at most `maxIdleWorkers`), so that the same burst again finds them
 * ready; once the pool was idle for `idleWorkerTtlMs`, it forgets that peak.
 *
 * @module
 */

import { clearImmediate, setImmediate } from "node:timers";
import { Quiet } from "../../util/quiet.ts";
import { EventRouter } from "./event_router.ts";
import type { FromWorker, ToWorker } from "../worker_protocol.ts";

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Workers kept warm and ready. */
  warmWorkers: number;
  /**
   * Most idle workers kept for reuse; extra ones are terminated. Also the
   * most the pool grows to in the background after a burst.
   */
  maxIdleWorkers: number;
  /**
   * After this long without a start or a release, idle workers beyond
   * `warmWorkers` are terminated (null: never). Workers start in 12–20 ms,
   * so keeping them for a while makes the next burst of starts fast.
   */
  idleWorkerTtlMs: number | null;
  /** Let the idle timeout terminate the `warmWorkers` too, so a program can exit. */
  trimWarm?: boolean;
  /** The worker module (default `workers/process_worker.ts` of this package). */
  workerUrl?: URL;
  /** Time between two terminations of idle workers let go (default {@link RETIRE_GAP_MS}). */
  retireGapMs?: number;
}

const DEFAULT_WORKER_URL = new URL("../../../workers/process_worker.ts", import.meta.url);
/**
 * How long the pool waits, after the last start that took a ready worker,
 * before it starts replacements. `new Worker()` blocks the calling thread
 * for 15-20 ms (the new isolate boots before it returns): done at once, it
 * would delay the answer to the very start it replaces a worker for, and
 * the next starts of a quick series. 50 ms, not less: a short command
 * (`true`, `git status`) gives its worker back before that, and then no
 * replacement is needed at all (with 10 ms, the first command on a new
 * executor took ~40 ms, the refill stalling its exit event). The pool also
 * waits for the starts still spawning their child
 * ({@link WorkerPool.holdRefill}). Starts that find no ready worker get one
 * started at once.
 */
const REFILL_DELAY_MS = 50;
/**
 * Idle workers the pool lets go (after its idle timeout, or beyond
 * `maxIdleWorkers`) are terminated one per this many milliseconds, not all at
 * once. Each worker's thread gives its memory back to the system as it ends
 * (Deno calls `malloc_trim`), and many ending together stall the whole
 * process: terminating 200 idle workers at once stopped the main thread's
 * event loop for 5.8 s (measured; 50 at once: 41 ms). One per 10 ms (200
 * in 2.6 s): the loop was at most 8 ms late.
 */
export const RETIRE_GAP_MS = 10;
/**
 * At most this many workers are terminated at once when the pool closes
 * (50 at once stalled the event loop 41 ms, 200 for seconds).
 */
export const CLOSE_AT_ONCE = 32;
/** Workers being started at once. */
const SPAWN_CONCURRENCY = Math.max(2, navigator.hardwareConcurrency ?? 2);

/** A pool of ready process workers. */
export class WorkerPool {
  readonly #warmWorkers: number;
  readonly #maxIdleWorkers: number;
  readonly #idleWorkerTtlMs: number | null;
  readonly #url: URL;
  #idle: Worker[] = [];
  /** Idle workers let go, terminated one per {@link RETIRE_GAP_MS}; a start still takes one if no other is idle. */
  #retiring: Worker[] = [];
  /** Workers out of the pool (see {@link discard}) whose thread is yet to be terminated, before the retiring ones. */
  #dying: Worker[] = [];
  #retireTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #retireGapMs: number;
  #warming = 0;
  /**
   * The most workers in use at once (running a process or waited for) since
   * the pool was last trimmed: the pool grows back to it (see {@link prewarm}).
   */
  #peak = 0;
  #waiting: { resolve(worker: Worker): void; reject(error: Error): void; forStart: boolean }[] = [];
  #idleTimer: Quiet | null = null;
  #refillTimer: Quiet;
  /** Starts on a pooled worker that have not spawned their child yet (see {@link holdRefill}). */
  #holding = 0;
  /** The refill timer fired while starts were held: refill once they are done. */
  #refillDue = false;
  /** Set for one task after a worker was started: no other starts before it fires. */
  #spawnGate: ReturnType<typeof setImmediate> | null = null;
  /** What was asked for while the gate was set. */
  #gated = { waiting: false, prewarm: false };
  readonly #trimWarm: boolean;
  #closed = false;
  #closeListeners = new Set<() => void>();
  /** Every live worker, with its events router once it is ready (null while it starts). */
  #all = new Map<Worker, EventRouter | null>();

  /** Creates a pool; nothing starts until the first {@link acquire} or {@link prewarm}. */
  constructor(options: WorkerPoolOptions) {
    this.#warmWorkers = options.warmWorkers;
    this.#maxIdleWorkers = Math.max(options.maxIdleWorkers, this.#warmWorkers);
    this.#idleWorkerTtlMs = options.idleWorkerTtlMs;
    this.#trimWarm = options.trimWarm ?? false;
    this.#url = options.workerUrl ?? DEFAULT_WORKER_URL;
    this.#retireGapMs = options.retireGapMs ?? RETIRE_GAP_MS;
    this.#refillTimer = new Quiet(REFILL_DELAY_MS, () => {
      if (this.#holding > 0) this.#refillDue = true;
      else this.prewarm();
    });
    if (this.#idleWorkerTtlMs !== null) {
      this.#idleTimer = new Quiet(this.#idleWorkerTtlMs, () => this.#trimIdle());
    }
  }

  /** Number of live workers (idle, warming and busy). */
  get size(): number {
    return this.#all.size;
  }

  /** Workers started and waiting for a process. */
  get idle(): number {
    return this.#idle.length;
  }

  /**
   * Starts workers until `warmWorkers` are idle or warming (plus one per waiting
   * start), and until the pool holds as many workers as were in use at the
   * recent peak (at most `maxIdleWorkers`). Only a few start at once: starting many
   * Web Workers in parallel is slower than starting them a few at a time. And
   * only one per task:
   * `new Worker()` blocks this thread for 15–20 ms, two in a row for 30–65
   * (measured), and in between, everything else this thread serves (every
   * connection of an executor) gets its turn.
   */
  prewarm(): void {
    if (this.#closed) return;
    if (this.#spawnGate !== null) {
      this.#gated.prewarm = true;
      return;
    }
    if (
      this.#warming < SPAWN_CONCURRENCY &&
      (this.#idle.length + this.#warming < this.#warmWorkers + this.#waiting.length ||
        this.#belowPeak())
    ) {
      this.#spawnOnce();
    }
  }

  /** Starts the warm workers and resolves once one is ready (or the pool keeps none). */
  async ready(): Promise<void> {
    this.prewarm();
    if (this.#idle.length > 0 || this.#warming === 0) return;
    const worker = await this.#acquire({ forStart: false });
    this.release(worker);
  }

  /** A ready worker, from the pool or freshly started. */
  acquire(): Promise<Worker> {
    return this.#acquire({ forStart: true });
  }

  /** {@link acquire}; `forStart` false: the worker goes back to the pool (it may prime). */
  #acquire(options: { forStart: boolean }): Promise<Worker> {
    if (this.#closed) {
      return Promise.reject(new Error("the worker pool is closed: create a new backend"));
    }
    this.#touch();
    const worker = this.#idle.pop() ?? this.#retiring.pop();
    if (worker !== undefined) {
      this.#notePeak();
      this.#scheduleRefill();
      return Promise.resolve(worker);
    }
    const result = new Promise<Worker>((resolve, reject) =>
      this.#waiting.push({ resolve, reject, forStart: options.forStart })
    );
    this.#notePeak();
    this.#startForWaiting();
    return result;
  }

  /**
   * Keeps the refill (which blocks this thread in `new Worker()`) from running
   * before `start` settles: the start of a process on a worker just taken
   * from the pool, whose answer should not wait for a replacement. `start`
   * must settle (spawned, failed, or the pool closed).
   */
  holdRefill(start: Promise<unknown>): void {
    this.#holding++;
    const done = () => {
      this.#holding--;
      if (this.#holding === 0 && this.#refillDue) {
        this.#refillDue = false;
        // A timer again, not now: the answer to the start goes out first.
        this.#scheduleRefill();
      }
    };
    start.then(done, done);
  }

  /** Whether the pool holds fewer workers than it grows back to: the recent peak, at most `maxIdleWorkers`. */
  #belowPeak(): boolean {
    return this.#all.size < Math.min(this.#peak, this.#maxIdleWorkers);
  }

  /** Records how many workers are in use now: running a process (busy) or waited for. */
  #notePeak(): void {
    const busy = this.#all.size - this.#idle.length - this.#retiring.length - this.#warming;
    this.#peak = Math.max(this.#peak, busy + this.#waiting.length);
  }

  /**
   * Starts workers for the starts waiting for one (only those: refills wait,
   * see {@link REFILL_DELAY_MS}): one now, the next ones each on a later task
   * (see {@link prewarm}).
   */
  #startForWaiting(): void {
    if (this.#closed) return;
    if (this.#spawnGate !== null) {
      this.#gated.waiting = true;
      return;
    }
    if (this.#warming < SPAWN_CONCURRENCY && this.#warming < this.#waiting.length) {
      this.#spawnOnce();
    }
  }

  /**
   * Starts one worker, and no other until the next task (see {@link prewarm}).
   * The next task is a `setImmediate`, not a `setTimeout(0)`: a timer set
   * from a timer is held back to 4 ms after five levels (a chain of
   * `setTimeout(0)` measured 2.5 ms per step, of `setImmediate` 0.13 ms), and
   * starts waiting for workers need them made back to back.
   */
  #spawnOnce(): void {
    this.#spawn();
    this.#spawnGate = setImmediate(() => {
      this.#spawnGate = null;
      // What was asked for meanwhile, waiting starts first.
      const { waiting, prewarm } = this.#gated;
      this.#gated = { waiting: false, prewarm: false };
      if (waiting) this.#startForWaiting();
      if (prewarm) this.prewarm();
    });
  }

  /** The router of a worker's events channel. */
  router(worker: Worker): EventRouter {
    const router = this.#all.get(worker);
    if (router === undefined || router === null) {
      throw new Error("this worker is not a ready worker of this pool");
    }
    return router;
  }

  /** Returns an idle worker (its process was released). */
  release(worker: Worker): void {
    worker.onmessage = null;
    worker.onerror = null;
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) {
      waiter.resolve(worker);
    } else if (!this.#closed && this.#idle.length < this.#maxIdleWorkers) {
      this.#idle.push(worker);
      this.#touch();
      // A burst ending: the pool may still be short of its peak (see prewarm).
      if (this.#belowPeak()) this.#scheduleRefill();
    } else if (!this.#closed) {
      this.#retire([worker]);
    } else {
      this.discard(worker);
    }
  }

  /** Lets idle workers go: terminated one now and the others {@link RETIRE_GAP_MS} apart. */
  #retire(workers: Worker[]): void {
    this.#retiring.push(...workers);
    if (this.#retireTimer === null) this.#terminateNext();
  }

  /**
   * Terminates a worker that cannot be reused: at once out of the pool, its
   * thread ended in turn with the idle workers let go (a burst of failed
   * starts must not stall the process either).
   */
  discard(worker: Worker): void {
    this.#detach(worker);
    if (this.#closed) {
      worker.terminate();
      return;
    }
    this.#dying.push(worker);
    if (this.#retireTimer === null) this.#terminateNext();
  }

  #detach(worker: Worker): void {
    // Whatever it still says goes nowhere; an error must not reach the program.
    worker.onmessage = null;
    worker.onerror = (event) => event.preventDefault();
    this.#all.get(worker)?.close();
    this.#all.delete(worker);
  }

  #terminateNext(): void {
    this.#retireTimer = null;
    // Workers out of the pool first; of the idle ones let go, the oldest (a start takes the newest).
    let worker = this.#dying.shift();
    if (worker === undefined) {
      worker = this.#retiring.shift();
      if (worker === undefined) return;
      this.#detach(worker);
    }
    worker.terminate();
    // The next one waits for the gap, even if it comes later: workers let go one by one in
    // quick succession (a burst of failed starts) are as many at once.
    const timer = setTimeout(() => this.#terminateNext(), this.#retireGapMs);
    // Idle workers are no reason to keep a program alive; while they live, the loop runs anyway.
    Deno.unrefTimer(timer);
    this.#retireTimer = timer;
  }

  /** Calls `listener` when the pool closes; returns a function that removes it. */
  onClose(listener: () => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * Terminates every worker, busy ones included. Up to
   * {@link CLOSE_AT_ONCE} go at once; more are terminated
   * {@link RETIRE_GAP_MS} apart (200 at once froze this thread's event loop
   * for 4.4 s after `close()` had returned). Resolves once all are. With
   * `atOnce` (a program about to exit), all are terminated now.
   */
  close(options: { atOnce?: boolean } = {}): Promise<void> {
    this.#closed = true;
    for (const listener of [...this.#closeListeners]) listener();
    this.#closeListeners.clear();
    this.#idleTimer?.cancel();
    this.#refillTimer.cancel();
    if (this.#spawnGate !== null) clearImmediate(this.#spawnGate);
    if (this.#retireTimer !== null) clearTimeout(this.#retireTimer);
    this.#retireTimer = null;
    this.#retiring = [];
    const workers = [...this.#dying.splice(0), ...this.#all.keys()];
    for (const worker of this.#all.keys()) this.#detach(worker);
    this.#idle = [];
    const error = new Error("the worker pool was closed while a process was starting");
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
    if (options.atOnce === true || workers.length <= CLOSE_AT_ONCE) {
      for (const worker of workers) worker.terminate();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const next = () => {
        const worker = workers.shift();
        if (worker === undefined) return resolve();
        worker.terminate();
        setTimeout(next, this.#retireGapMs);
      };
      next();
    });
  }

  #spawn(): void {
    this.#warming++;
    const worker = new Worker(this.#url, { type: "module", name: "execbridge-process" });
    this.#all.set(worker, null);
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      if (event.data?.type !== "ready") return;
      // One events channel per worker, for every process it will run. Made once the worker runs:
      // a port sent to a worker that fails to load would never be received, nor closed.
      const channel = new MessageChannel();
      this.#all.set(worker, new EventRouter(channel.port1));
      // A worker that will wait in the pool spawns a throwaway child first (see the runner's
      // primeSpawn); one a start is waiting for goes to work at once.
      const prime = this.#waiting[0]?.forStart !== true;
      worker.postMessage(
        { type: "init", events: channel.port2, prime } satisfies ToWorker,
        [channel.port2],
      );
      this.#warming--;
      this.release(worker);
      if (this.#waiting.length > 0) this.#startForWaiting();
      else this.#scheduleRefill();
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#warming--;
      this.discard(worker);
      const waiter = this.#waiting.shift();
      waiter?.reject(new Error(`a process worker failed to start: ${event.message}`));
      // The other waiting starts still need workers (each failure fails one start, so this ends).
      this.#startForWaiting();
    };
  }

  /**
   * Refills the warm workers soon, off the path of the start that took one:
   * {@link REFILL_DELAY_MS} after the last such start (debounced by a
   * timestamp, so a series of starts arms one timer, not one each).
   */
  #scheduleRefill(): void {
    if (!this.#closed) this.#refillTimer.poke();
  }

  /** A start or a release: idle workers are trimmed only after {@link WorkerPoolOptions.idleWorkerTtlMs} without one. */
  #touch(): void {
    this.#idleTimer?.poke();
  }

  #trimIdle(): void {
    // Quiet for a while: the last burst's size no longer says much about the next one.
    this.#peak = 0;
    const keep = this.#trimWarm ? 0 : this.#warmWorkers;
    this.#retire(this.#idle.splice(keep));
    // Idle long enough to let the warm workers go: a pending refill must not bring them back
    // (with an idle timeout shorter than the refill delay, that would never stop).
    if (this.#trimWarm) this.#refillTimer.cancel();
  }
}
