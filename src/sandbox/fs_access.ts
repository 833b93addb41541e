/**
 * Sandboxed fs requests: each path a request reads or writes is checked
 * against the request's sandbox plan (`policy.ts`) after resolving symlinks
 * (a path that does not exist yet by its nearest parent), so that a link
 * cannot lead out of a writable root. Denied: -32600 saying which path and
 * why, and nothing done.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { MINIMAL_PATHS, planSandbox, PROTECTED_NAMES } from "./policy.ts";

/** A path a request touches, and whether it writes there. */
export interface PathAccess {
  /** The native absolute path. */
  path: string;
  /** True for a write (create, change, remove), false for a read. */
  write: boolean;
}

/** The path with symlinks resolved; for a path that does not exist, its nearest existing parent's. */
async function resolve(path: string): Promise<string> {
  const missing: string[] = [];
  let current = path.replace(/\/+$/, "") || "/";
  for (;;) {
    try {
      const real = await Deno.realPath(current);
      return [real.replace(/\/$/, ""), ...missing].join("/") || "/";
    } catch {
      const slash = current.lastIndexOf("/");
      if (slash <= 0) return path;
      missing.unshift(current.slice(slash + 1));
      current = current.slice(0, slash);
    }
  }
}

function under(path: string, root: string): boolean {
  return root === "/" || path === root || path.startsWith(root + "/");
}

/**
 * Checks every path of a request against its sandbox; resolves when all are
 * allowed (or there is no sandbox), else rejects with -32600.
 */
export async function checkFsAccess(
  method: string,
  sandbox: unknown,
  accesses: PathAccess[],
): Promise<void> {
  const plan = planSandbox(sandbox, { method, cwd: Deno.cwd() });
  if (plan === null) return;
  const roots = async (paths: string[]) => await Promise.all(paths.map(resolve));
  const [write, read, deny] = await Promise.all([
    roots(plan.write),
    roots(plan.readRoot ? ["/"] : [...MINIMAL_PATHS, ...plan.read]),
    roots(plan.deny),
  ]);
  for (const access of accesses) {
    const real = await resolve(access.path);
    const refused = reason(real, access.write, { write, read, deny });
    if (refused !== null) {
      throw new RpcError(
        INVALID_REQUEST,
        `${method} ${access.path}: is not permitted by the sandbox policy (${refused})`,
      );
    }
  }
}

function reason(
  real: string,
  write: boolean,
  roots: { write: string[]; read: string[]; deny: string[] },
): string | null {
  if (roots.deny.some((root) => under(real, root))) return "denied";
  if (!write) {
    const readable = [...roots.read, ...roots.write].some((root) => under(real, root));
    return readable ? null : "not readable";
  }
  const root = roots.write.find((root) => under(real, root));
  if (root === undefined) return "not under a writable root";
  const inside = real.slice(root === "/" ? 1 : root.length + 1).split("/")[0];
  return PROTECTED_NAMES.includes(inside) ? `${inside} is read-only in a writable root` : null;
}
