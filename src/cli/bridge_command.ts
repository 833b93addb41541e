/**
 * `bridge`: a stdio MCP server for any MCP client (Claude Desktop, Cursor,
 * VS Code, Codex) whose real server runs on an executor. Messages from stdin
 * go to the remote process through a {@link ServerSupervisor}, which starts
 * the server again when it exits unexpectedly and keeps the client's
 * session; its messages come back on stdout; its stderr and our diagnostics
 * go to stderr. With `--no-respawn` bytes are piped as they come (only JSON
 * lines reach stdout) and the bridge ends with the server.
 *
 * @module
 */

import { DEFAULT_RESUME_WINDOW_MS } from "../client/executor_client.ts";
import { ExecutorLink } from "../client/executor_link.ts";
import type { ExecProcess } from "../exec/types.ts";
import { createLogger, type Logger, parseLogLevel } from "../log/logger.ts";
import { ExecutorStdioServerLauncher } from "../mcp/executor_stdio.ts";
import { EXECUTOR_URL_ENV } from "../mcp/config.ts";
import { decodeMessage, encodeMessage } from "../mcp/messages.ts";
import {
  type ProcessLinesEnd,
  readProcessLines,
  StdinWriter,
  stopProcess,
} from "../mcp/process_lines.ts";
import {
  DEFAULT_RESPAWN_POLICY,
  ServerSupervisor,
  type ServerSupervisorEnd,
} from "../mcp/server_supervisor.ts";
import type { StdioServerCommand } from "../mcp/stdio_command.ts";
import type { JsonRpcMessage, McpServerExit } from "../mcp/types.ts";
import { concatBytes } from "../util/bytes.ts";
import { readEnv } from "../util/env.ts";
import { LineSplitter } from "../util/lines.ts";
import { parseArgs, type ParsedArgs } from "./args.ts";

const WINDOW_S = DEFAULT_RESPAWN_POLICY.windowMs / 1000;
const MAX_RESTARTS = DEFAULT_RESPAWN_POLICY.maxRestarts;

/** Usage text of `bridge`. */
export const BRIDGE_USAGE = `usage: execbridge bridge --executor URL [options] -- COMMAND [ARGS…]

Runs COMMAND (a stdio MCP server) on the executor and speaks MCP on this
process's stdin/stdout, so any MCP client can use it as a local server.
When the server exits unexpectedly it is started again, and the client
keeps its session (requests in flight at the exit get an error).

  --executor URL      the executor (else EXECBRIDGE_EXECUTOR_URL)
  --token-file FILE   bearer token file (else EXECBRIDGE_TOKEN, else the default token file)
  --tls-ca FILE       trust this PEM CA for wss:// (else EXECBRIDGE_TLS_CA)
  --cwd DIR           working directory on the executor (default: the executor's)
  --env K=V           set a variable for the server (repeatable)
  --env-var NAME      copy NAME from this environment (repeatable)
  --log-level LEVEL   error | warn | info | debug (default info: the server's
                      stderr is shown; warn hides it)
  --max-restarts N    restarts within ${WINDOW_S} s before the bridge gives up and
                      exits non-zero (default ${MAX_RESTARTS})
  --no-respawn        no restarts: exit with the server's exit code when it exits
  --resume-window-ms N  after losing the executor, keep trying to reach it this
                      long (default ${DEFAULT_RESUME_WINDOW_MS}): a network loss resumes the
                      session; an executor that restarted gets a new session
                      and the server is started again (not with --no-respawn)
`;

const NEWLINE = new Uint8Array([10]);

/** Runs `bridge`; resolves with the exit code. */
export async function bridgeCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: [
      "executor",
      "token-file",
      "tls-ca",
      "cwd",
      "log-level",
      "max-restarts",
      "resume-window-ms",
    ],
    multiple: ["env", "env-var"],
    boolean: ["help", "no-respawn"],
  });
  if (parsed.flags.has("help")) {
    console.error(BRIDGE_USAGE);
    return 0;
  }
  const log = createLogger({
    name: "bridge",
    level: parseLogLevel(parsed.strings.get("log-level"), "info"),
  });
  const respawn = !parsed.flags.has("no-respawn");
  const maxRestarts = maxRestartsOption(parsed, respawn);
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
  const server: StdioServerCommand = {
    command,
    args: commandArgs,
    env,
    envVars: parsed.lists.get("env-var") ?? [],
    cwd: parsed.strings.get("cwd"),
  };
  const windowMs = resumeWindowOption(parsed);
  const link = await ExecutorLink.open(url, {
    tokenFile: parsed.strings.get("token-file"),
    caFile: parsed.strings.get("tls-ca"),
    clientName: "execbridge-bridge",
    reconnect: { windowMs },
    log,
  });
  try {
    if (respawn) return await supervise(link, { server, url, log, maxRestarts });
    const launcher = new ExecutorStdioServerLauncher(link.current, { log });
    let process: ExecProcess;
    try {
      process = await launcher.startProcess(server);
    } catch (error) {
      throw new Error(`could not start ${command} on ${url}: ${(error as Error).message}`);
    }
    log.debug(`started ${command} on ${url} as ${process.processId}`);
    return await pipe(process, command, log);
  } finally {
    await link.close();
  }
}

/** `--resume-window-ms`: how long to try to get the executor back after a loss. */
function resumeWindowOption(parsed: ParsedArgs): number {
  const given = parsed.strings.get("resume-window-ms");
  if (given === undefined) return DEFAULT_RESUME_WINDOW_MS;
  const value = Number(given);
  if (!/^[0-9]+$/.test(given) || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(
      `--resume-window-ms must be a positive integer (ms to keep trying to reach the executor ` +
        `after a loss), got ${JSON.stringify(given)}`,
    );
  }
  return value;
}

/** `--max-restarts`: a positive integer, and only when restarting is on. */
function maxRestartsOption(parsed: ParsedArgs, respawn: boolean): number {
  const given = parsed.strings.get("max-restarts");
  if (given === undefined) return MAX_RESTARTS;
  if (!respawn) throw new Error("--max-restarts has no effect with --no-respawn; drop one of them");
  const value = Number(given);
  if (!/^[0-9]+$/.test(given) || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(
      `--max-restarts must be a positive integer (restarts within ${WINDOW_S} s before ` +
        `giving up), got ` +
        `${JSON.stringify(given)}; pass --no-respawn to turn restarting off`,
    );
  }
  return value;
}

/**
 * Bridges stdin/stdout to a supervised server: restarts keep the client's
 * session; resolves with the exit code once stdin ended (0), the server was
 * given up on (its last exit code, else 1) or the executor was lost (1).
 */
async function supervise(
  link: ExecutorLink,
  options: { server: StdioServerCommand; url: string; log: Logger; maxRestarts: number },
): Promise<number> {
  const { server, url, log } = options;
  const name = server.command;
  // Each server starts on a live session: a new one if the executor was lost meanwhile.
  const launch = async () =>
    new ExecutorStdioServerLauncher(await link.renew(), { log }).launch(server);
  let supervisor: ServerSupervisor;
  try {
    supervisor = await ServerSupervisor.launch(launch, {
      name,
      log,
      policy: { maxRestarts: options.maxRestarts },
      whenLost: async () => void await link.renew(),
    });
  } catch (error) {
    throw new Error(`could not start ${name} on ${url}: ${(error as Error).message}`);
  }
  const stdout = new StdoutMessages();
  supervisor.onmessage = (message) => stdout.write(message);
  supervisor.onerror = (error) => log.warn(error.message);
  try {
    await supervisor.start();
    const first = await Promise.race([
      readMessages(supervisor, { name, log }).then(() => null),
      supervisor.ended,
      stdout.failed,
    ]);
    if (first === null) {
      // The MCP client closed stdin: shut the server down as the MCP spec says.
      await supervisor.close();
    }
    const end: ServerSupervisorEnd = await supervisor.ended;
    await stdout.drained();
    switch (end.kind) {
      case "closed":
        return 0;
      case "lost":
        log.error(`lost the executor: ${end.message}`);
        return 1;
      case "gaveUp":
        // The supervisor logged why.
        return exitCodeOf(end.exit);
    }
  } catch (error) {
    // Our stdout broke (the MCP client died), or stdin was unusable.
    log.error(`${(error as Error).message}; stopping ${name}`);
    await supervisor.close();
    return 1;
  }
}

/** Reads MCP messages from stdin (one per line) into the supervisor until EOF. */
async function readMessages(
  supervisor: ServerSupervisor,
  options: { name: string; log: Logger },
): Promise<void> {
  const reader = Deno.stdin.readable.getReader();
  const splitter = new LineSplitter();
  const decode = (line: Uint8Array) =>
    decodeMessage(line, { ...options, writer: "the MCP client" });
  let lines: Uint8Array[] = [];
  const collect = (line: Uint8Array) => lines.push(line);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) splitter.flush(collect);
      else splitter.push(value, collect);
      const batch = lines;
      lines = [];
      for (const line of batch) {
        const message = decode(line);
        if (message === null) continue;
        try {
          await supervisor.send(message);
        } catch {
          return; // It ended; `ended` says why.
        }
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}

/** The exit code of the bridge for a server that exited: its own, else 1. */
function exitCodeOf(exit: McpServerExit | null): number {
  const code = exit?.exitCode ?? null;
  return code !== null && code !== 0 ? code & 0xff || 1 : 1;
}

/** Most bytes of server output waiting for our stdout before the bridge gives up. */
const MAX_PENDING_STDOUT = 64 * 1024 * 1024;

/** Messages for our stdout, one per line, written in batches and in order. */
class StdoutMessages {
  /** Rejects when a write failed or the client reads too slowly. */
  readonly failed: Promise<never>;
  readonly #fail: (error: Error) => void;
  #batch: Uint8Array[] = [];
  #pending = 0;
  #scheduled = false;
  #writing: Promise<void> = Promise.resolve();

  constructor() {
    const { promise, reject } = Promise.withResolvers<never>();
    this.failed = promise;
    this.#fail = reject;
    promise.catch(() => {}); // Reported by whoever races it.
  }

  write(message: JsonRpcMessage): void {
    const line = encodeMessage(message);
    this.#batch.push(line);
    this.#pending += line.byteLength;
    if (this.#pending > MAX_PENDING_STDOUT) {
      this.#fail(
        new Error(`the MCP client reads stdout too slowly (${this.#pending} bytes waiting)`),
      );
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /** Resolves once everything written so far reached stdout (or failed). */
  async drained(): Promise<void> {
    if (this.#scheduled) this.#flush();
    await this.#writing.catch(() => {});
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#batch.length === 0) return;
    const batch = concatBytes(this.#batch);
    this.#batch = [];
    this.#writing = this.#writing.then(async () => {
      await writeAll(batch);
      this.#pending -= batch.byteLength;
    });
    this.#writing.catch((error) => this.#fail(error));
  }
}

/**
 * `--no-respawn`: pipes stdin to the process and its JSON lines to stdout
 * until one side ends; resolves with the exit code (the server's own when it
 * exited).
 */
async function pipe(process: ExecProcess, command: string, log: Logger): Promise<number> {
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
