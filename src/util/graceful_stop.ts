/**
 * Stopping a stdio server the way the MCP specification asks: close its
 * stdin, wait, SIGTERM its process group, wait, SIGKILL. One sequence for a
 * local child and for a process on an executor.
 *
 * @module
 */

import { settlesWithin } from "./deadline.ts";

/** A process that can be stopped gracefully. */
export interface Stoppable {
  /** Ends its stdin (EOF). */
  closeStdin(): Promise<unknown>;
  /** Sends a signal to its process group. */
  signal(signal: "SIGTERM" | "SIGKILL"): Promise<unknown> | void;
  /** Settles once it is gone. */
  readonly gone: Promise<unknown>;
}

/**
 * EOF, then up to `graceMs` for it to go; SIGTERM, `graceMs` again; then
 * SIGKILL. Resolves once the last step was taken (not once it is gone).
 * Failures (a lost executor, a broken pipe) do not stop the sequence.
 */
export async function stopGracefully(target: Stoppable, graceMs: number): Promise<void> {
  // A server that stopped reading keeps the EOF (behind a pending write) waiting: bounded too.
  const eof = target.closeStdin().catch(() => {});
  if (await settlesWithin(Promise.all([eof, target.gone]), graceMs)) return;
  await signal(target, "SIGTERM");
  if (await settlesWithin(target.gone, graceMs)) return;
  await signal(target, "SIGKILL");
}

async function signal(target: Stoppable, name: "SIGTERM" | "SIGKILL"): Promise<void> {
  try {
    await target.signal(name);
  } catch {
    // Gone already, or unreachable: the next step (or the executor's session expiry) follows.
  }
}
