/**
 * The `execbridge` command line: dispatches to `serve`, `bridge` and `mcp`.
 *
 * @module
 */

import { bridgeCommand } from "./bridge_command.ts";
import { mcpCommand } from "./mcp_command.ts";
import { serveCommand } from "./serve_command.ts";

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
        return await serveCommand(rest);
      case "bridge":
        return await bridgeCommand(rest);
      case "mcp":
        return await mcpCommand(rest);
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
