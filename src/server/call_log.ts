/**
 * A session's recent answers, for a client that repeats its calls after a
 * reconnect (`initialize { resumableCalls: true }`, an execbridge
 * extension). Such a client numbers its requests across the whole session
 * and, after resuming it, sends again every call it has no answer for. A
 * call the executor already answered gets the same answer again, one still
 * running gets its answer when it ends, one that never arrived runs now: each
 * call takes effect once, whatever the connection lost.
 *
 * Bounded: the newest {@link CALL_LOG_LIMITS}`.answers` answers and
 * `.bytes` bytes of them are kept, and the ids of the newest `.ids` calls.
 * An answer larger than `.answerBytes` (a big read) is not kept: a repeat
 * runs it again, which is harmless for the reads that have big answers. A
 * repeat of a call whose answer was dropped but whose id is still known
 * gets an error saying so instead of a second run.
 *
 * @module
 */

/** How much of a session's answers is kept. */
export const CALL_LOG_LIMITS = {
  /** Most answers kept. */
  answers: 1024,
  /** Most bytes of answers kept. */
  bytes: 16 * 1024 * 1024,
  /** Largest answer kept; a larger one is computed again on a repeat. */
  answerBytes: 1024 * 1024,
  /** Most request ids remembered (answers dropped or not). */
  ids: 8192,
} as const;

/** Marks an answer that was too large to keep: a repeat runs the call again. */
const RUN_AGAIN = Symbol("run again");

/** What the log knows about a request id. */
export type CallRecord =
  | { kind: "new" }
  | { kind: "answered"; text: string }
  | { kind: "running"; answer: Promise<string | null> }
  | { kind: "forgotten" };

/** The answers of one session's calls, by request id. */
export class CallLog {
  readonly #answers = new Map<number, string | typeof RUN_AGAIN>();
  readonly #running = new Map<number, Promise<string | null>>();
  #bytes = 0;
  /** Ids of the calls that ran (newest last): one here but in no map was answered and forgotten. */
  readonly #seen = new Set<number>();

  /** What became of request `id` (a positive integer, as the client numbers them). */
  lookup(id: number): CallRecord {
    const answer = this.#answers.get(id);
    if (typeof answer === "string") return { kind: "answered", text: answer };
    const running = this.#running.get(id);
    if (running !== undefined) return { kind: "running", answer: running };
    if (answer === RUN_AGAIN || !this.#seen.has(id)) return { kind: "new" };
    return { kind: "forgotten" };
  }

  /**
   * Records a call that starts now; its answer (the whole response text, or
   * null when there is none to give) is kept once it settles.
   */
  begin(id: number, answer: Promise<string | null>): void {
    this.#seen.delete(id);
    this.#seen.add(id);
    if (this.#seen.size > CALL_LOG_LIMITS.ids) this.#seen.delete(this.#seen.values().next().value!);
    this.#answers.delete(id);
    this.#running.set(id, answer);
    answer.then((text) => {
      this.#running.delete(id);
      if (text !== null) this.#keep(id, text);
    }, () => this.#running.delete(id));
  }

  #keep(id: number, text: string): void {
    const size = text.length;
    if (size > CALL_LOG_LIMITS.answerBytes) {
      this.#answers.set(id, RUN_AGAIN);
    } else {
      this.#answers.set(id, text);
      this.#bytes += size;
    }
    for (const [oldest, kept] of this.#answers) {
      if (this.#answers.size <= CALL_LOG_LIMITS.answers && this.#bytes <= CALL_LOG_LIMITS.bytes) {
        break;
      }
      this.#answers.delete(oldest);
      if (typeof kept === "string") this.#bytes -= kept.length;
    }
  }
}
