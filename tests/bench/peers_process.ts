/**
 * Peer processes for `deno task bench --peers`: installing the peers from npm
 * on demand into `tests/bench/.peers/`, spawning their servers, and stopping
 * them together with every process they started (found through `/proc`
 * before the first signal, since orphans are re-parented to init).
 *
 * @module
 */

import { delay, withDeadline } from "./targets.ts";
import { listProcesses, type ProcInfo, readProcInfo } from "../support/processes.ts";
import { runNpm } from "../support/npm.ts";

/** Where the peers are installed (git-ignored). */
export const PEERS_DIR = new URL("./.peers/", import.meta.url).pathname;

/** The pinned peer packages. */
export const PEER_VERSIONS = {
  supergateway: "4.0.0",
  codex: "0.169.0",
} as const;

const PACKAGES: Record<keyof typeof PEER_VERSIONS, string> = {
  supergateway: "supergateway",
  codex: "@openai/codex",
};

/** An installed peer: what to run, or why it is missing. */
export type Installed = { ok: true; path: string; version: string } | { ok: false; error: string };

/** The installed peers. */
export interface InstalledPeers {
  /** `supergateway`'s entry script (run with `node`). */
  supergateway: Installed;
  /** The native `codex` binary (or the npm wrapper when it cannot be found). */
  codex: Installed;
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The installed version of an npm package under {@link PEERS_DIR}, or null. */
async function installedVersion(name: string): Promise<string | null> {
  const json = await readJson(`${PEERS_DIR}node_modules/${name}/package.json`);
  return typeof json?.version === "string" ? json.version : null;
}

/**
 * The native codex binary of the platform package (`@openai/codex-linux-x64`
 * and the like). `node_modules/.bin/codex` is a Node wrapper that, on Node
 * < 22.15, keeps running as the parent of the binary; running the binary
 * itself is what newer Node versions do through `execve`.
 */
async function findCodexBinary(): Promise<string | null> {
  const scope = `${PEERS_DIR}node_modules/@openai/`;
  const roots: string[] = [];
  try {
    for await (const entry of Deno.readDir(scope)) {
      if (entry.name.startsWith("codex")) roots.push(`${scope}${entry.name}/vendor/`);
    }
  } catch {
    return null;
  }
  for (const vendor of roots.sort().reverse()) {
    try {
      for await (const triple of Deno.readDir(vendor)) {
        const path = `${vendor}${triple.name}/bin/codex`;
        if (await exists(path)) return path;
      }
    } catch {
      // No vendor directory in this package.
    }
  }
  const wrapper = `${PEERS_DIR}node_modules/.bin/codex`;
  return await exists(wrapper) ? wrapper : null;
}

async function locate(): Promise<InstalledPeers> {
  const missing = (name: keyof typeof PEER_VERSIONS, version: string | null): Installed => ({
    ok: false,
    error: version === null
      ? `${PACKAGES[name]} is not installed`
      : `${PACKAGES[name]}@${version} is installed, not ${PEER_VERSIONS[name]}`,
  });
  const sgVersion = await installedVersion("supergateway");
  const sgPath = `${PEERS_DIR}node_modules/supergateway/dist/index.js`;
  const supergateway: Installed = sgVersion === PEER_VERSIONS.supergateway && await exists(sgPath)
    ? { ok: true, path: sgPath, version: sgVersion }
    : missing("supergateway", sgVersion);
  const codexVersion = await installedVersion("@openai/codex");
  const codexPath = codexVersion === PEER_VERSIONS.codex ? await findCodexBinary() : null;
  const codex: Installed = codexPath !== null
    ? { ok: true, path: codexPath, version: codexVersion! }
    : codexVersion === PEER_VERSIONS.codex
    ? { ok: false, error: `@openai/codex@${codexVersion} has no codex binary for this platform` }
    : missing("codex", codexVersion);
  return { supergateway, codex };
}

/** Runs `npm install` for `specs` into {@link PEERS_DIR}; resolves with null or the error text. */
async function npmInstall(specs: string[], timeoutMs: number): Promise<string | null> {
  const args = ["install", "--prefix", PEERS_DIR, "--save-exact", ...specs];
  console.error(`peers: npm ${args.join(" ")}`);
  try {
    await Deno.mkdir(PEERS_DIR, { recursive: true });
  } catch (error) {
    return `cannot create ${PEERS_DIR}: ${error instanceof Error ? error.message : error}`;
  }
  return await runNpm(args, { timeoutMs });
}

/**
 * Makes sure the pinned peers are installed in {@link PEERS_DIR} (one `npm
 * install` when something is missing; if that fails, one per package). A
 * peer that cannot be installed is returned with the reason, never thrown.
 */
export async function ensurePeers(timeoutMs = 300_000): Promise<InstalledPeers> {
  let found = await locate();
  const names = (Object.keys(PEER_VERSIONS) as (keyof typeof PEER_VERSIONS)[])
    .filter((name) => !found[name].ok);
  if (names.length === 0) return found;
  const specs = names.map((name) => `${PACKAGES[name]}@${PEER_VERSIONS[name]}`);
  const failure = await npmInstall(specs, timeoutMs);
  found = await locate();
  if (failure === null) return found;
  const errors = new Map<string, string>();
  if (names.length > 1) {
    for (const name of names) {
      if (found[name].ok) continue;
      const single = await npmInstall([`${PACKAGES[name]}@${PEER_VERSIONS[name]}`], timeoutMs);
      if (single !== null) errors.set(name, single);
    }
    found = await locate();
  } else {
    errors.set(names[0], failure);
  }
  for (const name of names) {
    const entry = found[name];
    if (!entry.ok) {
      const error = `cannot install ${PACKAGES[name]}@${PEER_VERSIONS[name]} into ${PEERS_DIR}: ${
        errors.get(name) ?? failure
      }`;
      found[name] = { ok: false, error };
    }
  }
  return found;
}

// --- processes ----------------------------------------------------------------

/** The process `pid` and all its descendants, as they are now. */
export async function processTree(pid: number): Promise<ProcInfo[]> {
  const all = await listProcesses();
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p]);
    else list.push(p);
  }
  const root = all.find((p) => p.pid === pid);
  const tree: ProcInfo[] = root === undefined ? [] : [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i].pid) ?? []));
  return tree;
}

/** SIGKILLs the processes of a snapshot that still run (same pid and start time). */
async function killSnapshot(snapshot: readonly ProcInfo[]): Promise<void> {
  for (const p of snapshot) {
    const now = await readProcInfo(p.pid);
    if (now === null || now.start !== p.start) continue;
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
}

/** A peer server process with its stderr kept for error messages. */
export class PeerProcess {
  /** What it is, for messages. */
  readonly label: string;
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** Resolves when it exited. */
  readonly status: Promise<Deno.CommandStatus>;
  #stderr = "";
  #exited = false;
  #stopping: Promise<void> | null = null;

  /** Spawns `command` with `args`; stdout stays piped for the caller, stderr is collected. */
  constructor(
    label: string,
    command: string,
    args: string[],
    options: { env?: Record<string, string>; stdin?: "piped" | "null"; cwd?: string } = {},
  ) {
    this.label = label;
    const child = new Deno.Command(command, {
      args,
      env: options.env,
      clearEnv: options.env !== undefined,
      cwd: options.cwd,
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const stderrDone = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of child.stderr) {
          this.#stderr = (this.#stderr + decoder.decode(chunk, { stream: true })).slice(-8192);
        }
      } catch {
        // Cancelled on stop.
      }
    })();
    this.status = child.status.then(async (status) => {
      this.#exited = true;
      await withDeadline(stderrDone, 1000, "stderr").catch(() => {});
      return status;
    });
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid;
  }

  /** Whether it exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines of its stderr, for error messages. */
  stderrTail(lines = 5): string {
    const text = this.#stderr.trim().split("\n").slice(-lines).join(" | ");
    return text === "" ? "(no stderr)" : text;
  }

  /**
   * Reads stdout up to the first line that `accept` takes (e.g. a URL) and
   * then keeps draining stdout so the peer never blocks on it.
   */
  async waitForLine(accept: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const reader = this.child.stdout.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const find = async (): Promise<string> => {
      while (true) {
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const line of lines) if (accept(line.trim())) return line.trim();
        const { value, done } = await reader.read();
        if (done) {
          await this.status;
          throw new Error(`${this.label} exited before it was ready: ${this.stderrTail()}`);
        }
        buffer += decoder.decode(value, { stream: true });
      }
    };
    try {
      return await withDeadline(find(), timeoutMs, `${this.label} start-up`);
    } finally {
      (async () => {
        try {
          while (!(await reader.read()).done) { /* drain */ }
        } catch {
          // Cancelled.
        }
      })();
    }
  }

  /**
   * Stops it and everything it started: `gentle` (e.g. closing stdin or
   * SIGTERM) first, up to `graceMs`, then SIGKILL for every process of the
   * tree as it was before the first signal. Idempotent.
   */
  stop(graceMs = 3000, gentle: "SIGTERM" | "stdin" = "SIGTERM"): Promise<void> {
    this.#stopping ??= (async () => {
      const snapshot = await processTree(this.pid);
      if (!this.#exited) {
        try {
          if (gentle === "stdin") await this.child.stdin.close();
          else this.child.kill("SIGTERM");
        } catch {
          // Already gone or closed.
        }
        await Promise.race([this.status, delay(graceMs)]);
      }
      await killSnapshot(snapshot);
      // Children started after the snapshot, while it was still running.
      if (!this.#exited) await killSnapshot(await processTree(this.pid));
      await withDeadline(this.status, 5000, `stopping ${this.label}`).catch((error) =>
        console.error(`warning: ${error.message}`)
      );
      await this.child.stdout.cancel().catch(() => {});
    })();
    return this.#stopping;
  }
}

/** A free TCP port on 127.0.0.1 (for peers that cannot pick one themselves). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(
  port: number,
  peer: PeerProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    if (peer.exited) {
      throw new Error(`${peer.label} exited before it listened: ${peer.stderrTail()}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      if (performance.now() > deadline) {
        throw new Error(
          `${peer.label} did not listen on port ${port} within ${
            timeoutMs / 1000
          } s: ${peer.stderrTail()}`,
        );
      }
      await delay(50);
    }
  }
}
