/**
 * `~` expansion for paths people write (in flags and config files): `~`
 * alone and a leading `~/` become the home directory; anything else
 * (`~user/…`, a `~` elsewhere) stays as written.
 *
 * @module
 */

import { readEnv } from "./env.ts";

/**
 * execbridge's state directory: `${XDG_STATE_HOME:-$HOME/.local/state}/execbridge`
 * (the default token, the sandbox's seccomp filter).
 */
export function stateDirectory(): string {
  const state = readEnv("XDG_STATE_HOME") ?? `${readEnv("HOME") ?? "/root"}/.local/state`;
  return `${state}/execbridge`;
}

/**
 * Expands a leading `~` with the home directory: `HOME` (else `USERPROFILE`)
 * from `env`, or from this process's environment when `env` is not given.
 * Without a home directory the path is returned unchanged.
 */
export function expandHome(path: string, env?: Record<string, string | undefined>): string {
  if (path !== "~" && !path.startsWith("~/")) return path;
  const home = env !== undefined
    ? env.HOME || env.USERPROFILE
    : readEnv("HOME") ?? readEnv("USERPROFILE");
  if (!home) return path;
  return path === "~" ? home : home.replace(/\/+$/, "") + path.slice(1);
}
