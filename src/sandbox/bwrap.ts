/**
 * Sandboxed processes under bubblewrap: a plan (`policy.ts`) as `bwrap`
 * arguments — the root or a minimal system read-only, the writable roots
 * bound writable, protected metadata (`.git`, `.agents`, `.codex`) and
 * denied paths read-only or hidden, the network unshared when off — and
 * whether `bwrap` can make sandboxes on this host at all.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import { readEnv } from "../util/env.ts";
import { networkFilterFile } from "./seccomp.ts";
import {
  MINIMAL_PATHS,
  planSandbox,
  PROTECTED_NAMES,
  refuseSandbox,
  type SandboxPlan,
} from "./policy.ts";

/** How a worker wraps a sandboxed child: `program args… -- command`. */
export interface SandboxWrapper {
  /** The program to run (`bwrap`, or a shell that opens the seccomp filter for it). */
  program: string;
  /** Its arguments, before `--` and the command. */
  args: string[];
}

/** The descriptor a network-less sandbox's seccomp filter is read from (see {@link sandboxWrapper}). */
const SECCOMP_FD = 3;

function exists(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

function depth(path: string): number {
  return path.split("/").filter((part) => part !== "").length;
}

/**
 * The `bwrap` arguments (before `--` and the command) that enforce `plan`
 * for a process in `cwd`. Mounts go from the widest to the narrowest, so
 * a narrower rule wins; denied paths come last.
 */
export function bwrapArgs(plan: SandboxPlan, cwd: string): string[] {
  // No capabilities inside, even for an executor that runs as root (who could remount `/`).
  const args = ["--die-with-parent", "--unshare-pid", "--cap-drop", "ALL"];
  if (plan.noNetwork) args.push("--unshare-net", "--seccomp", String(SECCOMP_FD));
  const mounts: { path: string; args: string[] }[] = [];
  const base = plan.readRoot ? ["/"] : MINIMAL_PATHS;
  for (const path of new Set([...base, ...plan.read])) {
    if (exists(path) !== null) mounts.push({ path, args: ["--ro-bind", path, path] });
  }
  for (const path of new Set(plan.write)) {
    if (exists(path) === null) continue;
    mounts.push({ path, args: ["--bind", path, path] });
    for (const name of PROTECTED_NAMES) {
      const inner = path === "/" ? `/${name}` : `${path}/${name}`;
      if (exists(inner) !== null) mounts.push({ path: inner, args: ["--ro-bind", inner, inner] });
    }
  }
  mounts.sort((a, b) => depth(a.path) - depth(b.path));
  for (const mount of mounts) args.push(...mount.args);
  args.push("--dev", "/dev", "--proc", "/proc");
  for (const path of new Set(plan.deny)) {
    const info = exists(path);
    if (info === null) continue;
    if (info.isDirectory) args.push("--tmpfs", path, "--remount-ro", path);
    else args.push("--ro-bind", "/dev/null", path);
  }
  args.push("--chdir", cwd);
  return args;
}

let bwrapFound: Promise<string | null> | null = null;
let bwrapKnown: string | null | undefined;

/**
 * Where `bwrap` is, once it proved it can make a sandbox here (it needs
 * user namespaces); null when it cannot. `EXECBRIDGE_BWRAP` names another
 * one (set to a missing file: none, for tests). Looked up once.
 */
export function detectBwrap(): Promise<string | null> {
  bwrapFound ??= (async () => {
    const named = readEnv("EXECBRIDGE_BWRAP");
    for (const path of named !== undefined ? [named] : ["/usr/bin/bwrap", "/bin/bwrap"]) {
      try {
        const probe = await new Deno.Command(path, {
          args: [
            "--ro-bind",
            "/",
            "/",
            "--unshare-pid",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "true",
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).output();
        if (probe.success) return bwrapKnown = path;
      } catch {
        // Not there, or not runnable.
      }
    }
    return bwrapKnown = null;
  })();
  return bwrapFound;
}

/** What {@link detectBwrap} found, once it has: a path, null (none), or undefined (not looked yet). */
export function knownBwrap(): string | null | undefined {
  return bwrapKnown;
}

/**
 * The wrapper that enforces a request's sandbox, null when it asks for
 * none; -32602 when it asks for what cannot be enforced here.
 */
export async function sandboxWrapper(
  raw: unknown,
  options: { cwd: string; env: Record<string, string>; enforceManagedNetwork?: boolean },
): Promise<SandboxWrapper | null> {
  const method = Method.processStart;
  const plan = planSandbox(raw, { ...options, method });
  if (plan === null) return null;
  const program = await detectBwrap();
  if (program === null) {
    refuseSandbox(
      method,
      "the request asks for a sandbox, and bubblewrap (bwrap) is not available on the executor " +
        "host or cannot create namespaces there: install the bubblewrap package, or run without one",
    );
  }
  const args = bwrapArgs(plan, options.cwd);
  if (!plan.noNetwork) return { program, args };
  let filter: string;
  try {
    filter = await networkFilterFile();
  } catch (error) {
    return refuseSandbox(
      method,
      `the network cannot be turned off here: its seccomp filter is unavailable (${
        (error as Error).message
      })`,
    );
  }
  // bwrap reads the filter from a descriptor: a shell opens the file on it and becomes bwrap.
  return {
    program: "/bin/sh",
    args: ["-c", `exec "$@" ${SECCOMP_FD}<"$0"`, filter, program, ...args],
  };
}
