/** Runs a snippet in a fresh Deno, for what only shows at start-up (flags, env, first use). */

import assert from "node:assert/strict";

/** Options of {@link denoEval}. */
export interface DenoEvalOptions {
  /** Deno flags before the code (e.g. `--v8-flags=…`). */
  flags?: string[];
  /** Laid over this process's environment. */
  env?: Record<string, string>;
  /** Removed from the environment it inherits. */
  unset?: string[];
}

/** Runs `code` with `deno eval`; asserts it exits 0 and returns its trimmed stdout. */
export async function denoEval(code: string, options: DenoEvalOptions = {}): Promise<string> {
  const inherited = Deno.env.toObject();
  for (const name of options.unset ?? []) delete inherited[name];
  const env = { ...inherited, ...options.env };
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", ...(options.flags ?? []), code],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  return decoder.decode(out.stdout).trim();
}
