/**
 * Command lines of the programs tests run: the execbridge CLI (`mod.ts`),
 * the test MCP server, any script, all as `deno run -A --config deno.json`.
 */

/** The package entry point (and CLI). */
export const MOD = new URL("../../mod.ts", import.meta.url).pathname;
/** The project's deno.json (import map, lock). */
export const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
/** The test MCP stdio server. */
export const FIXTURE_SERVER = new URL("../fixtures/test_mcp_server.ts", import.meta.url).pathname;

/** Deno's arguments to run `script` with `args`: `run -A --config deno.json SCRIPT ARGS…`. */
export function denoRun(script: string, ...args: string[]): string[] {
  return ["run", "-A", "--config", CONFIG, script, ...args];
}

/** Deno's arguments to run the execbridge CLI: `denoRun(mod.ts, ...args)`. */
export function cliArgs(...args: string[]): string[] {
  return denoRun(MOD, ...args);
}

/** The test MCP server as a stdio command (with the fixture's own flags). */
export function fixtureServer(...flags: string[]): { command: string; args: string[] } {
  return { command: Deno.execPath(), args: denoRun(FIXTURE_SERVER, ...flags) };
}

/** What a finished run printed. */
export interface RunOutput {
  /** Exit code. */
  code: number;
  /** stdout, decoded. */
  stdout: string;
  /** stderr, decoded. */
  stderr: string;
}

/** Runs the CLI with `args` and no stdin until it exits. */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<RunOutput> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: cliArgs(...args),
    env: options.env,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
