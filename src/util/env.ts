/**
 * Reading this process's environment safely: a variable that is unset,
 * empty, or not readable (a Deno without `--allow-env` for it) reads as
 * undefined, never as an exception.
 *
 * @module
 */

/** The value of an environment variable; undefined when unset, empty or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** This process's whole environment; empty when not permitted. */
export function readAllEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {};
  }
}
