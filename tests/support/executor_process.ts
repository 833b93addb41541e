/**
 * Starts a real `serve` subprocess (`Deno.execPath() run -A mod.ts serve`)
 * for remote-mode tests, and stops it cleanly.
 */

import { CONFIG, MOD } from "./cli.ts";

/**
 * The token test executors require. It is set in this process's
 * EXECBRIDGE_TOKEN, so clients here and child processes (bridge, mcp)
 * send it without being told.
 */
export const TEST_TOKEN = "test-token-" + crypto.randomUUID();
Deno.env.set("EXECBRIDGE_TOKEN", TEST_TOKEN);

/** A running executor subprocess. */
export interface ExecutorProcess {
  /** The URL it printed on its first stdout line. */
  url: string;
  /** Its pid. */
  pid: number;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves once its stderr matches `pattern` (rejects if it exits first). */
  waitForStderr(pattern: RegExp): Promise<void>;
  /** SIGTERM (default) or SIGKILL, then waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Resolves when it exits on its own. */
  status: Promise<Deno.CommandStatus>;
}

/** Starts `serve` with extra args and waits for its URL line. */
export async function startExecutor(
  args: string[] = [],
  options: { env?: Record<string, string>; denoFlags?: string[] } = {},
): Promise<ExecutorProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(options.denoFlags ?? []),
      "--config",
      CONFIG,
      MOD,
      "serve",
      "--log-level",
      "warn",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  let stderrText = "";
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderrText += decoder.decode(chunk, { stream: true });
      for (const waiter of waiters) {
        if (waiter.pattern.test(stderrText)) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  })();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  while (!buffer.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
  }
  const stdoutDone = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const url = buffer.split("\n")[0];
  const status = child.status.then(async (s) => {
    await Promise.all([stderrDone, stdoutDone]);
    return s;
  });
  if (!url.startsWith("ws")) {
    await status;
    throw new Error(`executor did not print its URL; stderr:\n${stderrText}`);
  }
  return {
    url,
    pid: child.pid,
    stderr: () => stderrText,
    waitForStderr(pattern: RegExp): Promise<void> {
      if (pattern.test(stderrText)) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      const waiter = { pattern, resolve };
      waiters.add(waiter);
      const exited = status.then(() => {
        if (!waiters.delete(waiter)) return;
        throw new Error(`the executor exited before its stderr matched ${pattern}`);
      });
      return Promise.race([promise, exited]);
    },
    status,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
      return await status;
    },
  };
}
