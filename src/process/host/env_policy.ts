/**
 * Builds a child's environment: exactly `env` without a policy, or the
 * executor's own environment filtered by an `envPolicy` with `env` laid over.
 *
 * @module
 */

import type { EnvPolicy } from "../../protocol/types.ts";
import { readAllEnv } from "../../util/env.ts";

/** Variables kept by `inherit: "core"` (POSIX). */
export const CORE_ENV_VARS: readonly string[] = [
  "PATH",
  "SHELL",
  "TMPDIR",
  "TEMP",
  "TMP",
  "HOME",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "LOGNAME",
  "USER",
];

/** Names dropped unless `ignoreDefaultExcludes`: anything that looks like a credential. */
export const DEFAULT_EXCLUDES: readonly string[] = ["*KEY*", "*SECRET*", "*TOKEN*"];

/**
 * Case-insensitive glob match with `*` and `?`, in linear time (a greedy
 * two-pointer match that backtracks only to the last `*`): patterns come from
 * clients, and a backtracking RegExp would let one request stall the executor.
 */
export function matchesGlob(name: string, pattern: string): boolean {
  const n = name.toUpperCase();
  const p = pattern.toUpperCase();
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < n.length) {
    if (j < p.length && (p[j] === "?" || p[j] === n[i])) {
      i++;
      j++;
    } else if (j < p.length && p[j] === "*") {
      star = j++;
      mark = i;
    } else if (star !== -1) {
      j = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (j < p.length && p[j] === "*") j++;
  return j === p.length;
}

function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => matchesGlob(name, pattern));
}

/**
 * Returns the child environment for a `process/start` request.
 *
 * @example
 * ```ts
 * import { buildChildEnv } from "./env_policy.ts";
 * const env = buildChildEnv({ FOO: "1" }, {
 *   policy: { inherit: "core", ignoreDefaultExcludes: false, exclude: [], set: {}, includeOnly: [] },
 *   source: { PATH: "/bin", API_TOKEN: "x" },
 * });
 * // → { PATH: "/bin", FOO: "1" }
 * ```
 */
export function buildChildEnv(
  env: Record<string, string> | undefined,
  options: { policy?: EnvPolicy | null; source?: Record<string, string> } = {},
): Record<string, string> {
  const policy = options.policy;
  if (policy === undefined || policy === null) return { ...env };
  const source = options.source ?? readAllEnv();
  let result: Record<string, string> = {};
  switch (policy.inherit) {
    case "all":
      result = { ...source };
      break;
    case "core":
      for (const name of CORE_ENV_VARS) {
        if (source[name] !== undefined) result[name] = source[name];
      }
      break;
    case "none":
      break;
  }
  for (const name of Object.keys(result)) {
    const dropped = (!policy.ignoreDefaultExcludes && matchesAny(name, DEFAULT_EXCLUDES)) ||
      matchesAny(name, policy.exclude);
    if (dropped) delete result[name];
  }
  Object.assign(result, policy.set);
  if (policy.includeOnly.length > 0) {
    for (const name of Object.keys(result)) {
      if (!matchesAny(name, policy.includeOnly)) delete result[name];
    }
  }
  return Object.assign(result, env);
}
