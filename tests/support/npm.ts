/**
 * Runs npm for the opt-in suites that install real peers (the bench's
 * peers, the Codex interop suite's Codex versions).
 *
 * @module
 */

import { withTimeout } from "../../src/util/deadline.ts";

/**
 * Runs `npm ARGS --no-audit --no-fund --loglevel=error` in `cwd`; resolves
 * with null, or the reason it failed (npm's error code and first message
 * line, a timeout, npm missing). Never throws; a run past `timeoutMs` is
 * killed.
 */
export async function runNpm(
  args: string[],
  options: { cwd?: string; timeoutMs: number },
): Promise<string | null> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("npm", {
      args: [...args, "--no-audit", "--no-fund", "--loglevel=error"],
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    return `cannot run npm: ${error instanceof Error ? error.message : error}`;
  }
  try {
    const { code, stdout, stderr } = await withTimeout(child.output(), options.timeoutMs, {
      error: () => new Error(`npm ${args[0]} took longer than ${options.timeoutMs} ms`),
    });
    if (code === 0) return null;
    const text = new TextDecoder().decode(stderr).trim() ||
      new TextDecoder().decode(stdout).trim();
    return `npm ${args[0]} exited with ${code}: ${summarizeNpmError(text)}`;
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status.catch(() => {});
    return error instanceof Error ? error.message : String(error);
  }
}

/** The gist of npm's error output: its error code and first message line. */
function summarizeNpmError(text: string): string {
  const lines = text.split("\n").map((line) => line.replace(/^npm (error|ERR!) ?/, ""));
  const code = lines.find((line) => /^code \S+$/.test(line))?.slice(5);
  const detail = lines.find((line) =>
    line.trim() !== "" && !/^(code|syscall|errno) /.test(line) && !/^\s/.test(line)
  );
  const summary = [code, detail].filter((part) => part !== undefined).join(": ");
  return summary === "" ? "(no output)" : summary;
}
