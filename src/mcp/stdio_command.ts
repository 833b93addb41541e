/**
 * What an MCP stdio server is launched from, and the environment rules for
 * each placement: a local child gets a cleared environment plus a few
 * defaults; a server on an executor gets only what the config names, and
 * PATH, HOME and the like from the executor host.
 *
 * @module
 */

import type { EnvPolicy } from "../protocol/types.ts";
import { readAllEnv } from "../util/env.ts";

/** An `env_vars` entry: a name copied from the caller (`local`) or kept from the executor (`remote`). */
export interface EnvVarSpec {
  /** The variable name. */
  name: string;
  /** Where its value comes from (default `local`). */
  source?: "local" | "remote";
}

/** How to start an MCP stdio server. */
export interface StdioServerCommand {
  /** Program to run (looked up on PATH). */
  command: string;
  /** Arguments. */
  args?: string[];
  /** Literal environment values; they win over everything else. */
  env?: Record<string, string>;
  /** Variables to pass through by name. */
  envVars?: (string | EnvVarSpec)[];
  /** Working directory (for a remote server: a path on the executor). */
  cwd?: string;
  /** Name for logs; stderr lines are prefixed with it (default: the command). */
  name?: string;
}

/** Variables a local server always gets from the caller, when set. */
export const DEFAULT_ENV_VARS: readonly string[] = [
  "HOME",
  "LOGNAME",
  "PATH",
  "SHELL",
  "USER",
  "LANG",
  "LC_ALL",
  "TERM",
  "TMPDIR",
  "TZ",
];

function specs(command: StdioServerCommand): Required<EnvVarSpec>[] {
  return (command.envVars ?? []).map((v) =>
    typeof v === "string"
      ? { name: v, source: "local" }
      : { name: v.name, source: v.source ?? "local" }
  );
}

function callerEnv(name: string, source: Record<string, string | undefined>): string | undefined {
  return source[name];
}

/**
 * The environment of a local server: defaults and `envVars` copied from the
 * caller (when set), then `env`.
 */
export function localServerEnv(
  command: StdioServerCommand,
  caller: Record<string, string | undefined> = readAllEnv(),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of DEFAULT_ENV_VARS) {
    const value = callerEnv(name, caller);
    if (value !== undefined) env[name] = value;
  }
  for (const spec of specs(command)) {
    if (spec.source === "remote") {
      throw new Error(
        `env_vars entry \`${spec.name}\` uses source \`remote\`, which requires remote MCP stdio`,
      );
    }
    const value = callerEnv(spec.name, caller);
    if (value !== undefined) env[spec.name] = value;
  }
  return Object.assign(env, command.env);
}

/**
 * What a remote server is started with: an overlay of `envVars` copied from
 * the caller plus `env`, and a policy keeping the executor's core variables
 * (and `remote`-source ones).
 */
export function remoteServerEnv(
  command: StdioServerCommand,
  caller: Record<string, string | undefined> = readAllEnv(),
): { env: Record<string, string>; envPolicy: EnvPolicy } {
  const env: Record<string, string> = {};
  const remoteNames: string[] = [];
  for (const spec of specs(command)) {
    if (spec.source === "remote") {
      remoteNames.push(spec.name);
      continue;
    }
    const value = callerEnv(spec.name, caller);
    if (value !== undefined) env[spec.name] = value;
  }
  Object.assign(env, command.env);
  const envPolicy: EnvPolicy = remoteNames.length === 0
    ? { inherit: "core", ignoreDefaultExcludes: true, exclude: [], set: {}, includeOnly: [] }
    : {
      inherit: "all",
      ignoreDefaultExcludes: true,
      exclude: [],
      set: {},
      includeOnly: [...DEFAULT_ENV_VARS, ...remoteNames],
    };
  return { env, envPolicy };
}

/** Throws when a string sent to an executor is not valid Unicode (lone surrogates). */
export function requireUnicode(label: string, value: string): void {
  if (!value.isWellFormed()) {
    throw new Error(
      `${label} must be valid Unicode for remote MCP stdio: ${JSON.stringify(value)}`,
    );
  }
}
