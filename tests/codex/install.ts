/**
 * Installs the pinned Codex CLI (`@openai/codex` 0.169.0 and 0.171.0) on
 * demand, each into `tests/codex/.codex/<version>/` (git-ignored), with
 * `npm ci` from the package.json and package-lock.json kept in
 * `tests/codex/npm/<version>/`. Returns the native binary's path, or the
 * reason it cannot be had (tests then skip with that message).
 *
 * Run it on its own to install both versions and print the binaries:
 * `deno run -A tests/codex/install.ts [VERSION…]`.
 *
 * @module
 */

import { runNpm } from "../support/npm.ts";

/** The Codex versions the harness knows (each has a lockfile in `npm/`). */
export const CODEX_VERSIONS = ["0.169.0", "0.171.0"] as const;
/** The newest of them (what `ensureCodex()` installs when asked for no version). */
export const DEFAULT_CODEX_VERSION = "0.171.0";

/** Where the installs go. */
export const INSTALL_ROOT = new URL("./.codex/", import.meta.url).pathname;
const LOCK_ROOT = new URL("./npm/", import.meta.url).pathname;

/** An installed Codex, or why there is none. */
export type CodexInstall =
  | { ok: true; version: string; binary: string }
  | { ok: false; version: string; reason: string };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The platform package's directory name for this machine (`codex-linux-x64`, …). */
function platformPackage(): { pkg: string; triple: string } | null {
  const arch = Deno.build.arch === "x86_64" ? "x64" : Deno.build.arch === "aarch64" ? "arm64" : "";
  if (Deno.build.os === "linux" && arch !== "") {
    const triple = arch === "x64" ? "x86_64-unknown-linux-musl" : "aarch64-unknown-linux-musl";
    return { pkg: `codex-linux-${arch}`, triple };
  }
  if (Deno.build.os === "darwin" && arch !== "") {
    const triple = arch === "x64" ? "x86_64-apple-darwin" : "aarch64-apple-darwin";
    return { pkg: `codex-darwin-${arch}`, triple };
  }
  return null;
}

/** The installed binary of `version`, or null. */
export async function installedCodex(version: string): Promise<string | null> {
  const dir = `${INSTALL_ROOT}${version}/node_modules/@openai/`;
  try {
    const json = JSON.parse(await Deno.readTextFile(`${dir}codex/package.json`));
    if (json.version !== version) return null;
  } catch {
    return null;
  }
  const platform = platformPackage();
  if (platform === null) return null;
  const binary = `${dir}${platform.pkg}/vendor/${platform.triple}/bin/codex`;
  return await exists(binary) ? binary : null;
}

const installing = new Map<string, Promise<CodexInstall>>();

/**
 * Makes sure `@openai/codex@version` is installed in `.codex/<version>/`:
 * `npm ci` with the kept lockfile (or `npm install` when there is none,
 * after which the new lockfile is kept). Never throws.
 */
export function ensureCodex(
  version: string = DEFAULT_CODEX_VERSION,
  timeoutMs = 600_000,
): Promise<CodexInstall> {
  let promise = installing.get(version);
  if (promise === undefined) {
    promise = install(version, timeoutMs);
    installing.set(version, promise);
  }
  return promise;
}

async function install(version: string, timeoutMs: number): Promise<CodexInstall> {
  const found = await installedCodex(version);
  if (found !== null) return { ok: true, version, binary: found };
  if (platformPackage() === null) {
    return {
      ok: false,
      version,
      reason: `no Codex binary for ${Deno.build.os}/${Deno.build.arch}`,
    };
  }
  const dir = `${INSTALL_ROOT}${version}/`;
  const lockDir = `${LOCK_ROOT}${version}/`;
  await Deno.mkdir(dir, { recursive: true });
  const hasLock = await exists(`${lockDir}package-lock.json`);
  if (await exists(`${lockDir}package.json`)) {
    await Deno.copyFile(`${lockDir}package.json`, `${dir}package.json`);
  } else {
    await Deno.writeTextFile(
      `${dir}package.json`,
      JSON.stringify(
        {
          name: `codex-interop-${version}`,
          private: true,
          dependencies: { "@openai/codex": version },
        },
        null,
        2,
      ) + "\n",
    );
  }
  console.error(`codex interop: installing @openai/codex@${version} into ${dir} (npm)…`);
  let failure: string | null;
  if (hasLock) {
    await Deno.copyFile(`${lockDir}package-lock.json`, `${dir}package-lock.json`);
    failure = await runNpm(["ci"], { cwd: dir, timeoutMs });
  } else {
    failure = await runNpm(["install", "--save-exact"], { cwd: dir, timeoutMs });
    if (failure === null) {
      await Deno.mkdir(lockDir, { recursive: true });
      await Deno.copyFile(`${dir}package.json`, `${lockDir}package.json`);
      await Deno.copyFile(`${dir}package-lock.json`, `${lockDir}package-lock.json`);
    }
  }
  const binary = await installedCodex(version);
  if (binary !== null) return { ok: true, version, binary };
  return {
    ok: false,
    version,
    reason: `cannot install @openai/codex@${version} into ${dir}: ${
      failure ?? "npm succeeded but the platform binary is missing"
    }`,
  };
}

/**
 * The versions the tests run: `EXECBRIDGE_INTEROP_CODEX_VERSIONS`
 * (comma-separated), or every version the harness knows (the issue requires
 * both 0.169.0 and 0.171.0).
 */
export function selectedVersions(): string[] {
  const raw = Deno.env.get("EXECBRIDGE_INTEROP_CODEX_VERSIONS");
  if (!raw) return [...CODEX_VERSIONS];
  return raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
}

if (import.meta.main) {
  const versions = Deno.args.length > 0 ? Deno.args : [...CODEX_VERSIONS];
  let failed = false;
  for (const version of versions) {
    const result = await ensureCodex(version);
    if (result.ok) console.log(`${version} ${result.binary}`);
    else {
      failed = true;
      console.log(`${version} SKIPPED: ${result.reason}`);
    }
  }
  Deno.exit(failed ? 1 : 0);
}
