/** Process checks for tests: is a pid still running (zombies count as gone)? */

/** True when `pid` exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` is gone: a SIGKILL is delivered asynchronously and
 * nothing notifies an unrelated process of the death, so this polls /proc.
 */
export async function waitGone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** One process, as `/proc/PID/stat` has it. */
export interface ProcInfo {
  /** Its pid. */
  pid: number;
  /** Its parent's pid. */
  ppid: number;
  /** Its process group. */
  pgid: number;
  /** Its session. */
  sid: number;
  /** Start time in clock ticks since boot: tells a pid apart from a reused one. */
  start: string;
}

/** `pid`'s entry, or null when it is gone or a zombie. */
export async function readProcInfo(pid: number): Promise<ProcInfo | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // "pid (comm) state ppid pgrp session …": comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return null;
    return {
      pid,
      ppid: Number(fields[1]),
      pgid: Number(fields[2]),
      sid: Number(fields[3]),
      start: fields[19],
    };
  } catch {
    return null;
  }
}

/** Every live process from `/proc`, or [] where there is none. */
export async function listProcesses(): Promise<ProcInfo[]> {
  const result: ProcInfo[] = [];
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const info = await readProcInfo(Number(entry.name));
      if (info !== null) result.push(info);
    }
  } catch {
    // No /proc.
  }
  return result;
}
