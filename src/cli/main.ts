/**
 * The `execbridge` command line: dispatches to `serve`, `bridge` and `mcp`.
 * Each command's module is imported when it runs, so that `serve` loads
 * neither the client nor the MCP layer (docs/performance.md, "Start-up").
 *
 * @module
 */

/** Top-level usage text. */
export const USAGE = `execbridge — run MCP servers where the code lives

usage:
  deno run -A mod.ts serve [--listen ws://IP:PORT|stdio] [--token-file F] …
  deno run -A mod.ts bridge --executor URL [--cwd DIR] [--env K=V]… -- COMMAND ARGS…
  deno run -A mod.ts mcp (list|status|tools|call) --config FILE …

Run a command with --help for its options.
`;

/** Runs the CLI with `args` and resolves with the process exit code. */
export async function runCli(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "serve":
        return await (await import("./serve_command.ts")).serveCommand(rest);
      case "bridge":
        return await (await import("./bridge_command.ts")).bridgeCommand(rest);
      case "mcp":
        return await (await import("./mcp_command.ts")).mcpCommand(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.error(USAGE);
        return command === undefined ? 2 : 0;
      default:
        console.error(`execbridge: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    console.error(`execbridge ${command}: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
}
