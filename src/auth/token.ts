/**
 * Where executor tokens come from, on both sides: an explicit value, a token
 * file (which must not be readable by group or others), `EXECBRIDGE_TOKEN`,
 * or the default file `${XDG_STATE_HOME:-~/.local/state}/execbridge/token`,
 * which the executor creates (256 random bits, mode 0600, folder 0700) so that
 * clients configured once keep working across restarts.
 *
 * @module
 */

import { readEnv } from "../util/env.ts";
import { expandHome, stateDirectory } from "../util/home.ts";

/** The environment variable holding a token. */
export const TOKEN_ENV = "EXECBRIDGE_TOKEN";

/** The default token file: `${XDG_STATE_HOME:-$HOME/.local/state}/execbridge/token`. */
export function defaultTokenPath(): string {
  return `${stateDirectory()}/token`;
}

/**
 * Reads a token file. With `requirePrivate` (the executor's side), refuses a
 * file that its group or others can read.
 */
export async function readTokenFile(
  path: string,
  options: { requirePrivate?: boolean } = {},
): Promise<string> {
  const file = expandHome(path);
  let info: Deno.FileInfo;
  let text: string;
  try {
    info = await Deno.stat(file);
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new Error(`cannot read the token file ${file}: ${(error as Error).message}`);
  }
  if (options.requirePrivate && info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new Error(
      `the token file ${file} is readable by others (mode ${(info.mode & 0o777).toString(8)}): ` +
        `run chmod 600 ${file}`,
    );
  }
  const token = text.trim();
  if (token === "") throw new Error(`the token file ${file} is empty`);
  return token;
}

/** Reads the default token file, creating it (and its folder) when missing. */
export async function loadOrCreateDefaultToken(): Promise<{ token: string; path: string }> {
  const path = defaultTokenPath();
  try {
    return { token: await readTokenFile(path, { requirePrivate: true }), path };
  } catch (error) {
    if (!(await exists(path))) {
      const dir = path.slice(0, path.lastIndexOf("/"));
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await Deno.chmod(dir, 0o700);
      const token = new Uint8Array(32);
      crypto.getRandomValues(token);
      const text = token.toBase64({ alphabet: "base64url", omitPadding: true });
      await Deno.writeTextFile(path, text + "\n", { mode: 0o600, createNew: true });
      await Deno.chmod(path, 0o600);
      return { token: text, path };
    }
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The token a client sends: `token`, else `tokenFile`, else
 * `EXECBRIDGE_TOKEN`, else the default token file when it exists.
 */
export async function resolveClientToken(
  options: { token?: string; tokenFile?: string },
): Promise<string | undefined> {
  if (options.token !== undefined) return options.token;
  if (options.tokenFile !== undefined) return await readTokenFile(options.tokenFile);
  const fromEnv = readEnv(TOKEN_ENV);
  if (fromEnv !== undefined) return fromEnv;
  const path = defaultTokenPath();
  return (await exists(path)) ? await readTokenFile(path) : undefined;
}
