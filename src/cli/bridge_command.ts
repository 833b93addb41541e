/**
 * `bridge`: a stdio MCP server for any MCP client (Claude Desktop, Cursor,
 * VS Code, Codex) whose real server runs on an executor. Bytes from stdin go
 * to the remote process; its stdout comes back line by line (only JSON lines
 * reach stdout); its stderr and our diagnostics go to stderr.
 *
 * @module
 */

import { connectExecutor } from "../client/executor_client.ts";
import type { ExecProcess } from "../exec/types.ts";
import { createLogger, type Logger, parseLogLevel } from "../log/logger.ts";
import { ExecutorStdioServerLauncher } from "../mcp/executor_stdio.ts";
import { EXECUTOR_URL_ENV } from "../mcp/config.ts";
import { concatBytes } from "../util/bytes.ts";
import { readEnv } from "../util/env.ts";
import {
  type ProcessLinesEnd,
  readProcessLines,
  StdinWriter,
  stopProcess,
} from "../mcp/process_lines.ts";
import { parseArgs } from "./args.ts";

/** Usage text of `bridge`. */
export const BRIDGE_USAGE = `usage: execbridge bridge --executor URL [options] -- COMMAND [ARGS…]

Runs COMMAND (a stdio MCP server) on the executor and speaks MCP on this
process's stdin/stdout, so any MCP client can use it as a local server.

  --executor URL      the executor (else EXECBRIDGE_EXECUTOR_URL)
  --token-file FILE   bearer token file (else EXECBRIDGE_TOKEN, else the default token file)
  --tls-ca FILE       trust this PEM CA for wss:// (else EXECBRIDGE_TLS_CA)
  --cwd DIR           working directory on the executor (default: the executor's)
  --env K=V           set a variable for the server (repeatable)
  --env-var NAME      copy NAME from this environment (repeatable)
  --log-level LEVEL   error | warn | info | debug (default info: the server's
                      stderr is shown; warn hides it)
`;

const NEWLINE = new Uint8Array([10]);

/** Runs `bridge`; resolves with the exit code. */
export async function bridgeCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: ["executor", "token-file", "tls-ca", "cwd", "log-level"],
    multiple: ["env", "env-var"],
    boolean: ["help"],
  });
  if (parsed.flags.has("help")) {
    console.error(BRIDGE_USAGE);
    return 0;
  }
  const log = createLogger({
    name: "bridge",
    level: parseLogLevel(parsed.strings.get("log-level"), "info"),
  });
  const [command, ...commandArgs] = [...parsed.positional, ...parsed.rest];
  if (command === undefined) throw new Error(`no server command given\n\n${BRIDGE_USAGE}`);
  const url = parsed.strings.get("executor") || readEnv(EXECUTOR_URL_ENV);
  if (!url) {
    throw new Error("no executor: pass --executor ws://HOST:PORT or set EXECBRIDGE_EXECUTOR_URL");
  }
  const env: Record<string, string> = {};
  for (const pair of parsed.lists.get("env") ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`--env expects NAME=VALUE, got ${JSON.stringify(pair)}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const executor = await connectExecutor(url, {
    tokenFile: parsed.strings.get("token-file"),
    caFile: parsed.strings.get("tls-ca"),
    clientName: "execbridge-bridge",
  });
  let process: ExecProcess;
  try {
    process = await new ExecutorStdioServerLauncher(executor, { log }).startProcess({
      command,
      args: commandArgs,
      env,
      envVars: parsed.lists.get("env-var") ?? [],
      cwd: parsed.strings.get("cwd"),
    });
  } catch (error) {
    await executor.close();
    throw new Error(`could not start ${command} on ${url}: ${(error as Error).message}`);
  }
  log.debug(`started ${command} on ${url} as ${process.processId}`);

  const output = pumpOutput(process, command, log);
  const input = pumpInput(process);
  try {
    const first = await Promise.race([
      output.then((end) => ({ kind: "output" as const, end })),
      input.then(() => ({ kind: "input" as const })),
    ]);
    if (first.kind === "input") {
      // The MCP client closed stdin: shut the server down as the MCP spec says.
      await shutdown(process);
      const end = await output;
      if (end.failure !== null) log.error(`lost the executor: ${end.failure}`);
      return end.failure !== null ? 1 : 0;
    }
    if (first.end.failure !== null) {
      log.error(`lost the executor while ${command} was running: ${first.end.failure}`);
      return 1;
    }
    const exit = first.end.exitCode;
    log.error(`the MCP server ${command} on the executor exited (code ${exit ?? "unknown"})`);
    return exit !== null && exit !== 0 ? exit & 0xff || 1 : 1;
  } catch (error) {
    // Our stdout broke (the MCP client died), or the server's output was unusable.
    log.error(`${(error as Error).message}; stopping ${command}`);
    await shutdown(process);
    return 1;
  } finally {
    await executor.close();
  }
}

/** Forwards stdin to the remote process until EOF. */
async function pumpInput(process: ExecProcess): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  const stdin = new StdinWriter(process);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      const status = await stdin.write(value);
      if (status !== "accepted") return;
    }
  } catch {
    // The executor went away; the output side reports it.
  } finally {
    reader.releaseLock();
  }
}

/** Most bytes of server output waiting for our stdout before the bridge gives up. */
const MAX_PENDING_STDOUT = 64 * 1024 * 1024;

/** Writes the server's JSON lines to stdout, its stderr to ours, until it closed. */
async function pumpOutput(
  process: ExecProcess,
  name: string,
  log: Logger,
): Promise<ProcessLinesEnd> {
  const decoder = new TextDecoder();
  let lines: Uint8Array[] = [];
  let pending = 0;
  let writing: Promise<void> = Promise.resolve();
  const end = await readProcessLines(process, {
    name,
    log,
    onLine(line) {
      if (line.byteLength === 0) return;
      try {
        JSON.parse(decoder.decode(line));
        lines.push(line, NEWLINE);
        pending += line.byteLength + 1;
      } catch {
        const text = decoder.decode(line.subarray(0, 200));
        log.warn(`${name} wrote a line that is not JSON; kept off stdout: ${JSON.stringify(text)}`);
      }
    },
    afterEvent() {
      if (lines.length === 0) return;
      if (pending > MAX_PENDING_STDOUT) {
        throw new Error(`the MCP client reads stdout too slowly (${pending} bytes waiting)`);
      }
      const batch = concatBytes(lines);
      lines = [];
      writing = writing.then(async () => {
        await writeAll(batch);
        pending -= batch.byteLength;
      });
      // A failed write is reported once the output ended; don't let it go unhandled meanwhile.
      writing.catch(() => {});
    },
  });
  await writing;
  return end;
}

/** Ends stdin, waits, then SIGTERM, waits, then SIGKILL. */
function shutdown(process: ExecProcess): Promise<void> {
  return stopProcess(process, { gone: process.wait(), graceMs: 2000 });
}

async function writeAll(data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await Deno.stdout.write(data.subarray(offset));
}
