/**
 * Starting a child in its own session (and so its own process group, which
 * `kill(-pgid)` reaches as a whole).
 *
 * Deno's `detached: true` calls `setsid` between fork and exec, which makes
 * Rust fall back from `posix_spawn` to `fork`: every spawn then copies the
 * page tables of the whole executor — 40 ms per spawn at 1 GiB RSS (measured),
 * and an executor with hundreds of process workers is that big. So the child
 * is started through a launcher: a plain, fast spawn of a program whose only
 * work is to call setsid() and exec the real program under the same pid.
 * That is execbridge's own 400-byte static launcher (launcher.ts: ~0.05 ms)
 * where it can be installed, else util-linux `setsid PROGRAM ARGS…` (~0.8 ms:
 * a dynamic binary), else `detached: true`.
 *
 * @module
 */

import { readEnv } from "../util/env.ts";
import { findLauncher, launcherFailed } from "./launcher.ts";

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
 * Why `program` did not resolve, as execvp would say: `PermissionDenied`
 * when a file of that name exists but cannot be run, else `NotFound`.
 */
function unresolved(program: string, options: { path: string; cwd: string }): Error {
  const isFile = (path: string) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  };
  if (program.includes("/")) {
    const full = program.startsWith("/") ? program : `${options.cwd}/${program}`;
    return isFile(full)
      ? new Deno.errors.PermissionDenied(`${full} is not executable`)
      : new Deno.errors.NotFound(`program not found: ${full}`);
  }
  for (const dir of options.path.split(":")) {
    const base = dir === "" ? options.cwd : dir.startsWith("/") ? dir : `${options.cwd}/${dir}`;
    if (isFile(`${base}/${program}`)) {
      return new Deno.errors.PermissionDenied(
        `${program} is on PATH but not executable: ${base}/${program}`,
      );
    }
  }
  return new Deno.errors.NotFound(`program not found on PATH: ${program}`);
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
  // Each directory that lacks the program costs a failed stat (~8 µs, most
  // of it the error Deno throws): remember recent finds, like a shell's hash,
  // but only for a second, and only while the file is still there.
  const key = `${cwd}\0${path}\0${program}`;
  const now = performance.now();
  const known = recentFinds.get(key);
  if (known !== undefined && now - known.at < FIND_TTL_MS && isExecutableFile(known.path)) {
    return known.path;
  }
  for (const dir of path.split(":")) {
    const base = dir === "" ? cwd : dir.startsWith("/") ? dir : `${cwd}/${dir}`;
    const candidate = `${base}/${program}`;
    if (isExecutableFile(candidate)) {
      if (recentFinds.size >= MAX_FINDS) recentFinds.clear();
      recentFinds.set(key, { path: candidate, at: now });
      return candidate;
    }
  }
  return null;
}

const FIND_TTL_MS = 1000;
const MAX_FINDS = 256;
const recentFinds = new Map<string, { path: string; at: number }>();

function findSetsid(): string | null {
  if (setsidPath === undefined) {
    setsidPath = resolveProgram("setsid", { path: searchPath({}), cwd: "/" }) ??
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
  /** The child's argv[0], when not `argv[0]` itself. */
  arg0?: string | null;
}

type CommonOptions = Omit<Deno.CommandOptions, "args">;

/**
 * Spawns `argv` with piped stdout/stderr in a new session. Throws
 * `Deno.errors.NotFound` naming the program when it is not on PATH, and
 * `Deno.errors.PermissionDenied` when it is there but cannot be run.
 */
export function spawnSession(argv: string[], spawnOptions: SessionSpawnOptions): Deno.ChildProcess {
  // The program is resolved here, and exec'd after the child changed directory: from an absolute cwd.
  const cwd = spawnOptions.cwd.startsWith("/")
    ? spawnOptions.cwd
    : `${Deno.cwd()}/${spawnOptions.cwd}`;
  const options = { ...spawnOptions, cwd };
  const path = searchPath(options.env);
  const resolved = resolveProgram(argv[0], { path, cwd });
  if (resolved === null) throw unresolved(argv[0], { path, cwd });
  const common: CommonOptions = {
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: options.pipeStdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  };
  const launcher = findLauncher();
  if (launcher === null) return spawnWithoutLauncher(argv, resolved, options, common);
  // A path is exec'd as given (relative to the child's cwd, as execvp does; a
  // script then sees it as $0), a name as found on PATH.
  const program = argv[0].includes("/") ? argv[0] : resolved;
  const args = [program, options.arg0 ?? argv[0], ...argv.slice(1)];
  try {
    return new Deno.Command(launcher, { ...common, args }).spawn();
  } catch (error) {
    // The launcher never ran (the program's own failures are its exit code
    // 126 or 127). If it was the launcher's fault (a `noexec` mount, a
    // deleted file), this works and the launcher is set aside; if not (a
    // missing cwd), this fails too, with its own error.
    const child = spawnWithoutLauncher(argv, resolved, options, common);
    launcherFailed(error);
    return child;
  }
}

function spawnWithoutLauncher(
  argv: string[],
  resolved: string,
  options: SessionSpawnOptions,
  common: CommonOptions,
): Deno.ChildProcess {
  if (options.arg0 != null && options.arg0 !== argv[0]) {
    // Deno.Command cannot set argv[0]; perl's `exec {PROGRAM} LIST` can, without touching the env.
    const script = 'my $p = shift; exec {$p} @ARGV or die "cannot run $p: $!\\n"';
    const perl = resolveProgram("perl", { path: searchPath(options.env), cwd: options.cwd });
    if (perl === null) throw new Deno.errors.NotFound("arg0 needs perl, which is not on PATH");
    return spawnWithoutLauncher(
      [perl, "-e", script, resolved, options.arg0, ...argv.slice(1)],
      perl,
      { ...options, arg0: null },
      common,
    );
  }
  const setsid = findSetsid();
  if (setsid === null) {
    return new Deno.Command(resolved, { ...common, args: argv.slice(1), detached: true }).spawn();
  }
  // Keep argv[0] as given when the child's own PATH finds the same program.
  const program = options.env.PATH !== undefined || argv[0].includes("/") ? argv[0] : resolved;
  return new Deno.Command(setsid, { ...common, args: [program, ...argv.slice(1)] }).spawn();
}

/** Where programs are looked up: the child's PATH, else ours, else the usual two. */
function searchPath(env: Record<string, string>): string {
  return env.PATH ?? readEnv("PATH") ?? "/usr/bin:/bin";
}
