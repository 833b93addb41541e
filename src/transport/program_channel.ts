/**
 * A {@link TextChannel} to a program this process starts and speaks to over
 * its stdin and stdout, one message per line: an executor started as
 * `deno run -A mod.ts serve --listen stdio`, or over ssh
 * (`ssh devbox deno run -A /path/mod.ts serve --listen stdio`). Closing the
 * channel ends the program's stdin (an executor then stops, killing its
 * processes), and stops the program if it does not exit: SIGTERM, then
 * SIGKILL.
 *
 * @module
 */

import { stopGracefully } from "../util/graceful_stop.ts";
import type { TextChannel } from "./channel.ts";
import { lineChannel } from "./line_channel.ts";

/** A program to start and speak the protocol to over its stdio. */
export interface ProgramTarget {
  /** The program (looked up on PATH), e.g. `ssh` or `deno`. */
  program: string;
  /** Its arguments. */
  args?: string[];
  /** Variables set for it, on top of this process's environment. */
  env?: Record<string, string>;
  /** Its working directory (default: this process's). */
  cwd?: string;
}

/** Grace after stdin ends, then after SIGTERM, before the next step. */
const STOP_GRACE_MS = 2_000;

/**
 * Starts `target` and returns a channel over its stdio; its stderr goes to
 * this process's stderr (an executor's logs, ssh's messages). Throws when
 * the program cannot be started, naming it.
 */
export function programChannel(
  target: ProgramTarget,
  options: { maxLineBytes?: number } = {},
): TextChannel {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(target.program, {
      args: target.args ?? [],
      env: target.env,
      cwd: target.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    throw new Error(
      `cannot start the executor program ${JSON.stringify(target.program)}: ` +
        `${(error as Error).message}; check that it is installed and on PATH`,
    );
  }
  const status = child.status;
  const peer = `${target.program} (pid ${child.pid})`;
  const channel = lineChannel(child.stdout, child.stdin, {
    peer,
    maxLineBytes: options.maxLineBytes,
  });
  const closeChannel = channel.close.bind(channel);
  let stopping: Promise<void> | null = null;
  channel.close = (code?: number, reason?: string): Promise<void> => {
    stopping ??= (async () => {
      await stopGracefully({
        closeStdin: () => closeChannel(code, reason),
        signal: (name) => child.kill(name),
        gone: status,
      }, STOP_GRACE_MS);
      await status;
    })();
    return stopping;
  };
  return channel;
}
