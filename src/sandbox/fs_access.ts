/**
 * Sandboxed fs requests: each path a request reads or writes is checked
 * against the request's sandbox plan (`policy.ts`) after resolving symlinks
 * (a path that does not exist yet by its nearest parent), so that a link
 * cannot lead out of a writable root. The rules are the ones `bwrap.ts`
 * mounts: the most specific path wins (a read-only `.git` inside a writable
 * root, a writable directory inside a read-only tree), denied paths win
 * over everything. An operation on a whole tree (a recursive remove or
 * copy) is refused when the tree holds a path it may not touch; a walk
 * leaves such paths out. Denied: -32600 saying which path and why, and
 * nothing done.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { MINIMAL_PATHS, planSandbox, PROTECTED_NAMES, type SandboxPlan } from "./policy.ts";

/** A path a request touches, and how. */
export interface PathAccess {
  /** The native absolute path. */
  path: string;
  /** True for a write (create, change, remove), false for a read. */
  write: boolean;
  /** True when the operation reaches everything below the path too (recursive remove or copy). */
  tree?: boolean;
}

/** What a sandboxed request may see, for operations that list many paths (walks). */
export interface FsGuard {
  /** True when the path (symlinks resolved) may be read under the sandbox. */
  visible(realPath: string): boolean;
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

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A path that stays read-only inside a writable root, and why. */
interface Carve {
  path: string;
  why: string;
}

/** A plan's paths, symlinks resolved, as the rules of the checks. */
class Rules implements FsGuard {
  constructor(
    readonly read: string[],
    readonly write: string[],
    readonly deny: string[],
    readonly readOnly: Carve[],
  ) {}

  static async of(plan: SandboxPlan): Promise<Rules> {
    const all = (paths: string[]) => Promise.all(paths.map(resolve));
    const [write, read, explicitRead, deny] = await Promise.all([
      all(plan.write),
      all(plan.readRoot ? ["/", ...plan.read] : [...MINIMAL_PATHS, ...plan.read]),
      all(plan.read),
      all(plan.deny),
    ]);
    const readOnly: Carve[] = [];
    // Read entries inside a writable root stay read-only there (bwrap binds them over it).
    for (const path of explicitRead) {
      if (write.some((root) => root !== path && under(path, root))) {
        readOnly.push({ path, why: "read-only" });
      }
    }
    // Protected metadata that exists (as the reference, a missing one is not protected).
    for (const root of write) {
      for (const name of PROTECTED_NAMES) {
        const path = root === "/" ? `/${name}` : `${root}/${name}`;
        if (await exists(path)) {
          readOnly.push({
            path: await resolve(path),
            why: `${name} is read-only in a writable root`,
          });
        }
      }
    }
    return new Rules(read, write, deny, readOnly);
  }

  visible(real: string): boolean {
    return this.#refusal(real, false) === null;
  }

  #refusal(real: string, write: boolean): string | null {
    if (this.deny.some((root) => under(real, root))) return "denied";
    if (!write) {
      return this.read.some((root) => under(real, root)) ||
          this.write.some((root) => under(real, root))
        ? null
        : "not readable";
    }
    // The most specific rule wins, as the deepest mount does in the sandbox.
    let best: { length: number; why: string | null } | null = null;
    for (const root of this.write) {
      if (under(real, root) && (best === null || root.length >= best.length)) {
        best = { length: root.length, why: null };
      }
    }
    for (const carve of this.readOnly) {
      if (under(real, carve.path) && (best === null || carve.path.length > best.length)) {
        best = { length: carve.path.length, why: carve.why };
      }
    }
    return best === null ? "not under a writable root" : best.why;
  }

  /** Why `access` (at `real`) is refused, or null. */
  refusal(real: string, access: PathAccess): string | null {
    const refused = this.#refusal(real, access.write);
    if (refused !== null || !access.tree) return refused;
    // A whole tree: nothing inside it may be out of bounds.
    const inside = (path: string) => path !== real && under(path, real);
    const denied = this.deny.find(inside);
    if (denied !== undefined) return `it contains ${denied}, which is denied`;
    if (access.write) {
      const carve = this.readOnly.find((c) => inside(c.path));
      if (carve !== undefined) return `it contains ${carve.path}: ${carve.why}`;
    }
    return null;
  }
}

/**
 * Checks every path of a request against its sandbox; resolves when all are
 * allowed, with what the request may see (null when there is no sandbox),
 * else rejects with -32600.
 */
export async function checkFsAccess(
  method: string,
  sandbox: unknown,
  accesses: PathAccess[],
): Promise<FsGuard | null> {
  const plan = planSandbox(sandbox, { method, cwd: Deno.cwd() });
  if (plan === null) return null;
  const rules = await Rules.of(plan);
  for (const access of accesses) {
    const refused = rules.refusal(await resolve(access.path), access);
    if (refused !== null) {
      throw new RpcError(
        INVALID_REQUEST,
        `${method} ${access.path}: is not permitted by the sandbox policy (${refused})`,
      );
    }
  }
  return rules;
}
