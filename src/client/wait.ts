/**
 * Waiting for a process to end, on top of its event stream.
 *
 * @module
 */

import type { ExecProcessEvent, ExitStatus } from "./types.ts";

/**
 * Consumes events until `closed` and returns the exit status. Rejects when the
 * process `failed`, or when events end without a close.
 */
export async function waitForExit(
  events: AsyncIterableIterator<ExecProcessEvent>,
): Promise<ExitStatus> {
  let status: ExitStatus | null = null;
  for await (const event of events) {
    if (event.type === "exited") status = { exitCode: event.exitCode, signal: event.signal };
    else if (event.type === "failed") throw new Error(event.message);
    else if (event.type === "closed") break;
  }
  if (status === null) {
    throw new Error("the process event stream ended before the exit was seen");
  }
  return status;
}
