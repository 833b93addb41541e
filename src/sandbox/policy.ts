/**
 * Sandbox requests, read into a plan: the reference's requests carry a
 * `sandbox` (its `FileSystemSandboxContext`: a permission profile of
 * filesystem entries and a network policy; fs requests of the older
 * protocol a `sandboxPolicy`) that the executor must apply. A plan says
 * what may be read, written, or not touched at all, and whether the network
 * is off; `bwrap.ts` enforces it for processes, `fs_access.ts` for fs
 * requests. What cannot be enforced (glob entries, a managed network proxy)
 * is refused with -32602 saying what and why.
 *
 * @module
 */

import defer * as schemas from "../protocol/schemas.ts";
import type { LegacySandbox } from "../protocol/schemas.ts";
import { INVALID_PARAMS, RpcError } from "../protocol/errors.ts";
import { parseWirePath } from "../protocol/paths.ts";
import { readEnv } from "../util/env.ts";

/** What a sandbox asks for, in the terms execbridge enforces. */
export interface SandboxPlan {
  /** Read the whole filesystem (else only the minimal system and the read entries). */
  readRoot: boolean;
  /** Paths readable (beyond the root). */
  read: string[];
  /** Paths writable. */
  write: string[];
  /** Paths neither readable nor writable. */
  deny: string[];
  /** No network at all. */
  noNetwork: boolean;
}

/** What `minimal` read access means here: what programs need to run. */
export const MINIMAL_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt"];
/** Names under a writable root that stay read-only (as the reference protects them). */
export const PROTECTED_NAMES = [".git", ".agents", ".codex"];

/** Refuses a sandbox of `method`'s request (-32602, naming the field). */
export function refuseSandbox(method: string, what: string): never {
  throw new RpcError(INVALID_PARAMS, `invalid params for ${method}: sandbox: ${what}`);
}

/**
 * Turns a request's sandbox into a plan; null when it asks for none
 * (absent, `disabled`, or unrestricted with the network on). `method` names
 * the request in refusals; `cwd` is the default project root.
 */
export function planSandbox(
  raw: unknown,
  options: {
    method: string;
    cwd: string;
    env?: Record<string, string>;
    enforceManagedNetwork?: boolean;
  },
): SandboxPlan | null {
  const { method } = options;
  const refuse = (what: string): never => refuseSandbox(method, what);
  const path = (value: string, what: string): string => {
    const parsed = parseWirePath(value);
    if ("error" in parsed) refuse(`${what} ${parsed.error}`);
    return (parsed as { native: string }).native;
  };
  if (options.enforceManagedNetwork) {
    refuse(
      "enforceManagedNetwork needs the reference's managed network proxy, which execbridge does " +
        "not run; ask for network `restricted` or `enabled`",
    );
  }
  if (raw === undefined || raw === null) return null;
  const legacy = schemas.legacySandbox.safeParse(raw);
  if (legacy.success) return planLegacy(legacy.data, { ...options, refuse, path });
  const parsed = schemas.sandboxContext.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    refuse(
      `${where}${issue.message} (a sandbox execbridge does not understand is refused, not ignored)`,
    );
  }
  const context = parsed.data!;
  const profile = context.permissions;
  if (profile.type === "disabled") return null;
  const noNetwork = profile.network === "restricted";
  if (profile.type === "external" || profile.file_system.type === "unrestricted") {
    return noNetwork ? { readRoot: true, read: [], write: ["/"], deny: [], noNetwork } : null;
  }
  const roots = (context.workspaceRoots ?? []).map((root) => path(root, "workspace root"));
  const projectRoots = roots.length > 0
    ? roots
    : [context.cwd ? path(context.cwd, "cwd") : options.cwd];
  const plan: SandboxPlan = { readRoot: false, read: [], write: [], deny: [], noNetwork };
  for (const entry of profile.file_system.entries) {
    const target = entry.path;
    let paths: string[];
    if (target.type === "glob_pattern") {
      refuse(
        `the ${entry.access} entry for the glob \`${target.pattern}\` cannot be enforced by execbridge`,
      );
    }
    if (target.type === "path") paths = [path(target.path, "path")];
    else if (target.type === "special") {
      paths = specialPaths(target.value, { projectRoots, env: options.env ?? {}, refuse });
    } else paths = [];
    for (const one of paths) {
      if (entry.access === "write") plan.write.push(one);
      else if (entry.access === "read") {
        if (one === "/") plan.readRoot = true;
        else plan.read.push(one);
      } else plan.deny.push(one);
    }
  }
  return plan;
}

/** The older protocol's policies: full access, external, read-only, workspace-write. */
function planLegacy(
  legacy: LegacySandbox,
  options: {
    cwd: string;
    env?: Record<string, string>;
    refuse: (what: string) => never;
    path: (value: string, what: string) => string;
  },
): SandboxPlan | null {
  const policy = legacy.sandboxPolicy;
  const noNetwork = policy.network_access !== true;
  switch (policy.type) {
    case "danger-full-access":
    case "external-sandbox":
      return null;
    case "read-only":
      return { readRoot: true, read: [], write: [], deny: [], noNetwork };
    case "workspace-write": {
      const cwd = legacy.sandboxPolicyCwd
        ? options.path(legacy.sandboxPolicyCwd, "sandboxPolicyCwd")
        : options.cwd;
      const write = [
        cwd,
        ...(policy.writable_roots ?? []).map((root) => options.path(root, "writable root")),
      ];
      if (!policy.exclude_slash_tmp) write.push("/tmp");
      const tmp = options.env?.TMPDIR ?? readEnv("TMPDIR");
      if (!policy.exclude_tmpdir_env_var && tmp?.startsWith("/")) write.push(tmp);
      return { readRoot: true, read: [], write, deny: [], noNetwork };
    }
    default:
      return options.refuse(`the sandbox policy \`${policy.type}\` is not one execbridge knows`);
  }
}

/**
 * The paths a special entry names. A `subpath` narrows any of them (the
 * reference reads it on project roots only; anywhere else, ignoring it
 * would widen the entry); one that climbs out with `..` is refused.
 */
function specialPaths(
  value: { kind: string; subpath?: string | null; path?: string },
  context: { projectRoots: string[]; env: Record<string, string>; refuse: (what: string) => never },
): string[] {
  const subpath = value.subpath ?? "";
  if (subpath.split("/").includes("..")) {
    context.refuse(`the subpath \`${subpath}\` of a \`${value.kind}\` entry climbs out of it`);
  }
  const sub = (root: string) =>
    subpath.replace(/^\/+|\/+$/g, "") === ""
      ? root
      : `${root.replace(/\/$/, "")}/${subpath.replace(/^\/+|\/+$/g, "")}`;
  switch (value.kind) {
    case "root":
      return [sub("/")];
    case "minimal":
      if (subpath !== "") context.refuse("a `minimal` entry cannot have a subpath");
      return MINIMAL_PATHS;
    case "project_roots":
    case "current_working_directory":
      return context.projectRoots.map(sub);
    case "tmpdir": {
      const tmp = context.env.TMPDIR ?? readEnv("TMPDIR");
      return tmp !== undefined && tmp.startsWith("/") ? [sub(tmp)] : [];
    }
    case "slash_tmp":
      return [sub("/tmp")];
    default:
      // Like the reference: a special path this version does not know is ignored.
      return [];
  }
}
