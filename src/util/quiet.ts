/**
 * A debounced action whose pokes cost no timer each.
 *
 * @module
 */

/**
 * Runs an action once `ms` passed without a {@link Quiet.poke}. A poke only
 * records the time: a series of them arms one timer, not one each (a timer
 * costs ~3–4 µs to set and clear, and pokes come with every start).
 */
export class Quiet {
  readonly #ms: number;
  readonly #action: () => void;
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  /** Runs `action` after `ms` of quiet. */
  constructor(ms: number, action: () => void) {
    this.#ms = ms;
    this.#action = action;
  }

  /** Something happened: the action waits for `ms` more of quiet. */
  poke(): void {
    this.#last = performance.now();
    if (this.#timer === null) this.#arm(this.#ms);
  }

  /** Drops a pending action. */
  cancel(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(ms: number): void {
    const timer = setTimeout(() => {
      this.#timer = null;
      const wait = this.#last + this.#ms - performance.now();
      if (wait > 0) this.#arm(wait);
      else this.#action();
    }, ms);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
