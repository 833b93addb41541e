/**
 * {@link ExecutorLink}: the connection to an executor (at a URL, or a
 * program it starts), for those
 * that must outlive it (`bridge`, `McpConnectionManager`). A network loss is
 * the connection's own business (it reconnects and resumes the session);
 * when the connection is lost for good — the executor is gone, or
 * restarted and no longer has the session — the link keeps trying to reach
 * the executor until the resume window (counted from the loss) ends, and
 * opens a fresh session there. The servers that ran in the old session are
 * gone with it: their owners start them again on {@link ExecutorLink.current}.
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";
import { delay } from "../util/deadline.ts";
import {
  backoffMs,
  connectExecutor,
  type ConnectExecutorOptions,
  type ConnectionStateChange,
  DEFAULT_RESUME_WINDOW_MS,
  describeTarget,
  type ExecutorClient,
  type ExecutorTarget,
} from "./executor_client.ts";

/** Options of {@link ExecutorLink.open}. */
export interface ExecutorLinkOptions extends Omit<ConnectExecutorOptions, "channel"> {
  /** Where the link says what happens to it (lost, resuming, resumed, renewed). */
  log: Logger;
}

/** A connection to an executor that is replaced by a fresh session when lost for good. */
export class ExecutorLink {
  readonly #target: ExecutorTarget;
  /** The target in messages. */
  readonly #url: string;
  readonly #options: ExecutorLinkOptions;
  readonly #windowMs: number;
  #current: ExecutorClient;
  /** When the current connection was last lost (it went reconnecting, or closed). */
  #lostAt: number | null = null;
  #renewing: Promise<ExecutorClient> | null = null;
  #closed = false;
  readonly #stop = new AbortController();

  private constructor(target: ExecutorTarget, options: ExecutorLinkOptions) {
    this.#target = target;
    this.#url = describeTarget(target);
    this.#options = options;
    this.#windowMs = (options.reconnect || {}).windowMs ?? DEFAULT_RESUME_WINDOW_MS;
    this.#current = null as unknown as ExecutorClient;
  }

  /**
   * Connects to a URL or starts a program (a failure rejects: nothing is
   * retried before the first connection).
   */
  static async open(target: ExecutorTarget, options: ExecutorLinkOptions): Promise<ExecutorLink> {
    const link = new ExecutorLink(target, options);
    link.#current = await link.#connect();
    return link;
  }

  /** The connection to use now. */
  get current(): ExecutorClient {
    return this.#current;
  }

  /**
   * A connection with a live session: the current one while it is not
   * closed, else a fresh session, connecting again (backoff, as the client
   * does) until the resume window since the loss ends. Concurrent callers
   * share one attempt. Rejects with a message naming the executor and how
   * long it tried.
   */
  renew(): Promise<ExecutorClient> {
    if (this.#current.state !== "closed") return Promise.resolve(this.#current);
    this.#renewing ??= this.#reconnect().finally(() => this.#renewing = null);
    return this.#renewing;
  }

  /** Closes the current connection and stops any renewal. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    await this.#current.close();
  }

  #connect(): Promise<ExecutorClient> {
    const { log, onStateChange, ...options } = this.#options;
    const url = this.#url;
    return connectExecutor(this.#target, {
      ...options,
      onStateChange: (change: ConnectionStateChange) => {
        if (change.state === "reconnecting") {
          this.#lostAt = performance.now();
          log.warn(`connection to ${url} lost (${change.reason}); resuming…`);
        } else if (change.state === "connected") {
          log.info(`resumed the session on ${url} after ${seconds(change.downMs ?? 0)} s`);
        } else if (!this.#closed) {
          this.#lostAt ??= performance.now();
          log.warn(`lost the executor at ${url}: ${change.reason}`);
        }
        onStateChange?.(change);
      },
    });
  }

  async #reconnect(): Promise<ExecutorClient> {
    const url = this.#url;
    const lostAt = this.#lostAt ?? performance.now();
    const deadline = lostAt + this.#windowMs;
    const { log } = this.#options;
    let attempt = 0;
    let last = "";
    while (!this.#closed) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      if (attempt > 0) {
        const wait = Math.min(backoffMs(attempt), remaining);
        if (!await delay(wait, { signal: this.#stop.signal })) break;
      }
      attempt++;
      try {
        const fresh = await this.#connect();
        this.#current = fresh;
        this.#lostAt = null;
        log.info(
          `connected to ${url} again after ${seconds(performance.now() - lostAt)} s ` +
            `(a new session: its servers start again)`,
        );
        return fresh;
      } catch (error) {
        last = (error as Error).message;
      }
    }
    if (this.#closed) throw new Error(`the connection to ${url} was closed`);
    throw new Error(
      `could not reach the executor at ${url}: tried for ${
        seconds(performance.now() - lostAt)
      } s (${attempt} attempt${attempt === 1 ? "" : "s"}; the resume window is ${
        seconds(this.#windowMs)
      } s): ${last}`,
    );
  }
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
