/**
 * Waiting for a process to end, on top of its event stream.
 *
 * @module
 */

import type { ExecProcessEvent, ExitStatus } from "./types.ts";

/**
 * Follows a process's events (history first, as `listen` replays it) until
 * `closed` and returns the exit status. Rejects when the process `failed`.
 * A synchronous listener: no queue and no async iteration per event.
 */
export function waitForExit(
  listen: (handler: (event: ExecProcessEvent) => void) => () => void,
): Promise<ExitStatus> {
  return new Promise((resolve, reject) => {
    let status: ExitStatus | null = null;
    let done = false;
    let stop: (() => void) | null = null;
    const finish = (settle: () => void) => {
      done = true;
      stop?.();
      settle();
    };
    stop = listen((event) => {
      if (done) return;
      if (event.type === "exited") {
        status = { exitCode: event.exitCode, signal: event.signal };
        if (event.sandboxDenied) status.sandboxDenied = true;
      } else if (event.type === "failed") {
        finish(() => reject(new Error(event.message)));
      } else if (event.type === "closed") {
        const exit = status;
        finish(() =>
          exit === null
            ? reject(new Error("the process event stream ended before the exit was seen"))
            : resolve(exit)
        );
      }
    });
    // The history may have ended it already, before `stop` existed.
    if (done) stop();
  });
}
