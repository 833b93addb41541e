/**
 * Starting a child in its own session (and so its own process group, which
 * `kill(-pgid)` reaches as a whole).
 *
 * Deno's `detached: true` calls `setsid` between fork and exec, which makes
 * Rust fall back from `posix_spawn` to `fork`: every spawn then copies the
 * page tables of the whole executor — 40 ms per spawn at 1 GiB RSS (measured),
 * and an executor with hundreds of process workers is that big. So the child
 * is started through util-linux `setsid PROGRAM ARGS…` instead: a plain,
 * fast spawn whose first exec calls setsid() and execs the program under the
 * same pid (about 0.7 ms extra, independent of RSS). Without `setsid` on
 * PATH, `detached: true` is used.
 *
 * @module
 */

/** Where `setsid` is, or null when it is not installed. */
let setsidPath: string | null | undefined;

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Resolves a program like execvp: a name with a `/` is taken relative to
 * `cwd`; a bare name is looked up on `path`. Returns null when not found.
 */
export function resolveProgram(
  program: string,
  options: { path: string; cwd: string },
): string | null {
  const { path, cwd } = options;
  if (program.includes("/")) {
    const full = program.startsWith("/") ? program : `${cwd}/${program}`;
    return isExecutableFile(full) ? full : null;
  }
  for (const dir of path.split(":")) {
    const base = dir === "" ? cwd : dir.startsWith("/") ? dir : `${cwd}/${dir}`;
    const candidate = `${base}/${program}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function findSetsid(): string | null {
  if (setsidPath === undefined) {
    setsidPath =
      resolveProgram("setsid", { path: Deno.env.get("PATH") ?? "/usr/bin:/bin", cwd: "/" }) ??
        (isExecutableFile("/usr/bin/setsid") ? "/usr/bin/setsid" : null);
  }
  return setsidPath;
}

/** What {@link spawnSession} needs. */
export interface SessionSpawnOptions {
  /** Working directory. */
  cwd: string;
  /** The child's complete environment. */
  env: Record<string, string>;
  /** Give the child a stdin pipe (else /dev/null). */
  pipeStdin: boolean;
}

/**
 * Spawns `argv` with piped stdout/stderr in a new session. Throws
 * `Deno.errors.NotFound` naming the program when it is not on PATH.
 */
export function spawnSession(argv: string[], options: SessionSpawnOptions): Deno.ChildProcess {
  const childPath = options.env.PATH;
  const path = childPath ?? Deno.env.get("PATH") ?? "/usr/bin:/bin";
  const resolved = resolveProgram(argv[0], { path, cwd: options.cwd });
  if (resolved === null) {
    throw new Deno.errors.NotFound(`program not found on PATH: ${argv[0]}`);
  }
  // Keep argv[0] as given when the child's own PATH finds the same program.
  const program = childPath !== undefined || argv[0].includes("/") ? argv[0] : resolved;
  const setsid = findSetsid();
  const common = {
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: options.pipeStdin ? "piped" as const : "null" as const,
    stdout: "piped" as const,
    stderr: "piped" as const,
  };
  if (setsid === null) {
    return new Deno.Command(resolved, { ...common, args: argv.slice(1), detached: true }).spawn();
  }
  return new Deno.Command(setsid, { ...common, args: [program, ...argv.slice(1)] }).spawn();
}
