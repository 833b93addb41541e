/**
 * Child processes for the Codex interop harness, each in a session (and so
 * a process group) of its own, stopped together with everything they
 * started.
 *
 * Every process the harness spawns carries `CODEX_INTEROP_RUN=<run id>` in
 * its environment. Stopping a process SIGTERMs its group, waits, then
 * SIGKILLs every process of its tree as it was before the first signal,
 * the groups of those processes, and every process that still carries the
 * marker of this run (orphans re-parented to init, MCP servers whose config
 * passes the marker on). {@link leftovers} lists what still runs, so tests
 * can assert that nothing is left behind.
 *
 * @module
 */

import { listProcesses, type ProcInfo, readProcInfo } from "../support/processes.ts";

/** The id of this test process's run: the marker's value. */
export const RUN_ID = crypto.randomUUID();
/** The marker variable. */
export const MARKER = "CODEX_INTEROP_RUN";

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function hasMarker(pid: number, runId: string): Promise<boolean> {
  try {
    const environ = await Deno.readFile(`/proc/${pid}/environ`);
    return new TextDecoder().decode(environ).split("\0").includes(`${MARKER}=${runId}`);
  } catch {
    return false;
  }
}

async function commandLine(pid: number): Promise<string> {
  try {
    return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0").join(" ").trim();
  } catch {
    return "?";
  }
}

/** The processes `roots` and their descendants, their groups' and sessions' members. */
async function snapshot(roots: number[]): Promise<ProcInfo[]> {
  const all = await listProcesses();
  const children = new Map<number, ProcInfo[]>();
  for (const p of all) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p]);
    else list.push(p);
  }
  const tree = all.filter((p) => roots.includes(p.pid));
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i].pid) ?? []));
  const groups = new Set(tree.map((p) => p.pgid));
  const sessions = new Set(tree.map((p) => p.sid));
  // Never this test process's own group or session.
  const self = await readProcInfo(Deno.pid);
  if (self) {
    groups.delete(self.pgid);
    sessions.delete(self.sid);
  }
  const picked = new Map<number, ProcInfo>();
  for (const p of tree) picked.set(p.pid, p);
  for (const p of all) {
    if (p.pid === Deno.pid) continue;
    if (groups.has(p.pgid) || sessions.has(p.sid)) picked.set(p.pid, p);
  }
  return [...picked.values()];
}

async function killAll(processes: ProcInfo[], signal: Deno.Signal): Promise<void> {
  for (const p of processes) {
    const now = await readProcInfo(p.pid);
    if (now === null || now.start !== p.start) continue;
    try {
      Deno.kill(p.pid, signal);
    } catch {
      // Gone meanwhile.
    }
  }
}

/** Processes that still carry this run's marker: `pid command` lines. */
export async function leftovers(runId = RUN_ID): Promise<string[]> {
  const found: string[] = [];
  for (const p of await listProcesses()) {
    if (p.pid === Deno.pid) continue;
    if (await hasMarker(p.pid, runId)) found.push(`${p.pid} ${await commandLine(p.pid)}`);
  }
  return found;
}

/** SIGKILLs every process that carries this run's marker (a last resort in test teardown). */
export async function killLeftovers(runId = RUN_ID): Promise<string[]> {
  const found: ProcInfo[] = [];
  const lines: string[] = [];
  for (const p of await listProcesses()) {
    if (p.pid === Deno.pid) continue;
    if (await hasMarker(p.pid, runId)) {
      found.push(p);
      lines.push(`${p.pid} ${await commandLine(p.pid)}`);
    }
  }
  await killAll(found, "SIGKILL");
  return lines;
}

/** Options of {@link GroupProcess}. */
export interface SpawnOptions {
  /** Extra or replaced environment variables (on top of this process's). */
  env?: Record<string, string>;
  /** Drop these variables from the inherited environment. */
  unsetEnv?: string[];
  cwd?: string;
  /** Pipe stdin (default: /dev/null). */
  stdin?: boolean;
  /** Keep at most this much of stderr (default 256 KiB). */
  stderrLimit?: number;
}

/** A child process in a session of its own. */
export class GroupProcess {
  /** What it is, for messages. */
  readonly label: string;
  readonly child: Deno.ChildProcess;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #stderr = "";
  #exited = false;
  #stopping: Promise<void> | null = null;
  #stdoutReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #stdoutBuffer = "";
  #stdoutDone = false;
  #lineWaiters: (() => void)[] = [];
  #stdoutLines: string[] = [];
  readonly #stderrLimit: number;
  readonly #stdinPiped: boolean;

  constructor(label: string, command: string, args: string[], options: SpawnOptions = {}) {
    this.label = label;
    this.#stderrLimit = options.stderrLimit ?? 256 * 1024;
    this.#stdinPiped = options.stdin === true;
    const env: Record<string, string> = { ...Deno.env.toObject(), ...options.env };
    for (const name of options.unsetEnv ?? []) delete env[name];
    env[MARKER] = RUN_ID;
    const child = new Deno.Command("setsid", {
      args: [command, ...args],
      env,
      clearEnv: true,
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const limit = this.#stderrLimit;
    const stderrDone = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of child.stderr) {
          this.#stderr += decoder.decode(chunk, { stream: true });
          if (this.#stderr.length > limit) this.#stderr = this.#stderr.slice(-limit);
        }
      } catch {
        // Cancelled on stop.
      }
    })();
    this.status = this.child.status.then(async (status) => {
      this.#exited = true;
      await withTimeout(stderrDone, 2000, "stderr").catch(() => {});
      return status;
    });
  }

  /** The pid (= its process group and session id). */
  get pid(): number {
    return this.child.pid;
  }

  /** Whether it exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Everything it wrote to stderr (the last 256 KiB). */
  stderr(): string {
    return this.#stderr;
  }

  /** The last lines of stderr, for messages. */
  stderrTail(lines = 8): string {
    const text = this.#stderr.trim().split("\n").slice(-lines).join("\n");
    return text === "" ? "(no stderr)" : text;
  }

  /** Starts collecting stdout lines (call once; for line-oriented children). */
  #readStdout(): void {
    if (this.#stdoutReader !== null) return;
    const reader = this.child.stdout.getReader();
    this.#stdoutReader = reader;
    (async () => {
      const decoder = new TextDecoder();
      try {
        while (true) {
          const { value, done } = await reader.read();
          if (done) break;
          this.#stdoutBuffer += decoder.decode(value, { stream: true });
          const lines = this.#stdoutBuffer.split("\n");
          this.#stdoutBuffer = lines.pop()!;
          this.#stdoutLines.push(...lines);
          this.#wake();
        }
      } catch {
        // Cancelled.
      }
      this.#stdoutDone = true;
      this.#wake();
    })();
  }

  #wake(): void {
    const waiters = this.#lineWaiters;
    this.#lineWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for the first stdout line that `accept` takes; stdout keeps being drained after. */
  async waitForLine(accept: (line: string) => boolean, timeoutMs: number): Promise<string> {
    this.#readStdout();
    const find = async (): Promise<string> => {
      let index = 0;
      while (true) {
        for (; index < this.#stdoutLines.length; index++) {
          const line = this.#stdoutLines[index].trim();
          if (accept(line)) return line;
        }
        if (this.#stdoutDone) {
          await this.status;
          throw new Error(`${this.label} exited before it was ready:\n${this.stderrTail()}`);
        }
        await new Promise<void>((resolve) => this.#lineWaiters.push(resolve));
      }
    };
    return await withTimeout(find(), timeoutMs, `${this.label} start-up`);
  }

  /** Every stdout line so far (when {@link waitForLine} reads stdout). */
  stdoutLines(): string[] {
    return [...this.#stdoutLines];
  }

  /**
   * Stops it and everything it started: SIGTERM to its group, up to
   * `graceMs` for it to exit, then SIGKILL for the whole snapshot (tree,
   * groups, sessions) taken before the first signal, and for what appeared
   * since. Idempotent.
   */
  stop(graceMs = 3000): Promise<void> {
    this.#stopping ??= (async () => {
      const before = await snapshot([this.pid]);
      if (!this.#exited) {
        try {
          Deno.kill(-this.pid, "SIGTERM");
        } catch {
          // Already gone.
        }
        // The grace period ends early when it exits (withTimeout clears its timer either way).
        await withTimeout(this.status, graceMs, "grace period").catch(() => {});
      }
      await killAll(before, "SIGKILL");
      if (!this.#exited) await killAll(await snapshot([this.pid]), "SIGKILL");
      await withTimeout(this.status, 5000, `stopping ${this.label}`).catch((error) =>
        console.error(`warning: ${error.message}`)
      );
      if (this.#stdoutReader !== null) await this.#stdoutReader.cancel().catch(() => {});
      else await this.child.stdout.cancel().catch(() => {});
      if (this.#stdinPiped && !this.child.stdin.locked) {
        await this.child.stdin.abort().catch(() => {});
      }
    })();
    return this.#stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Where CODEX_HOMEs go: not under /tmp, because Codex refuses to create its
 * helper aliases (`codex-linux-sandbox`, used by the sandbox) in a CODEX_HOME
 * under a temporary directory. Git-ignored, next to the installs; every
 * directory in it is removed after its run.
 */
export const HOMES_ROOT = new URL("./.codex/homes/", import.meta.url).pathname;

/**
 * A fresh temporary directory (under /tmp, or under `parent`); `remove()`
 * deletes it.
 */
export async function tempDir(
  prefix: string,
  parent?: string,
): Promise<{ path: string; remove(): Promise<void> }> {
  if (parent !== undefined) await Deno.mkdir(parent, { recursive: true });
  const path = await Deno.makeTempDir({ prefix: `codex-interop-${prefix}-`, dir: parent });
  return {
    path,
    remove: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/**
 * Clears a stale pyenv rehash lock. On this kind of machine the login shell
 * runs `pyenv init`, and a lock left by a killed shell stalls every later
 * login shell for 60 s. Only a lock older than `maxAgeMs` is removed.
 */
export async function clearStalePyenvLock(maxAgeMs = 5000): Promise<void> {
  const home = Deno.env.get("HOME");
  const root = Deno.env.get("PYENV_ROOT") ?? (home ? `${home}/.pyenv` : null);
  if (root === null) return;
  const lock = `${root}/shims/.pyenv-shim`;
  try {
    const info = await Deno.stat(lock);
    const age = Date.now() - (info.mtime?.getTime() ?? 0);
    if (age > maxAgeMs) await Deno.remove(lock, { recursive: true });
  } catch {
    // No lock.
  }
}
