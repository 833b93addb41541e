/**
 * {@link ExecutorStdioServerLauncher}: an MCP stdio server started as a
 * process of an {@link ExecBackend} (an executor connection, or
 * `LocalExecBackend`), behind an MCP SDK `Transport`. Messages go in with
 * `process/write`; stdout comes back as process events and is reassembled
 * into lines; stderr is logged, never parsed.
 *
 * @module
 */

import type { ExecBackend, ExecProcess } from "../exec/types.ts";
import type { WriteStatus } from "../protocol/types.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import { settlesWithin } from "../util/deadline.ts";
import { LineTooLongError } from "../util/lines.ts";
import type { StdioServerLauncher } from "./local_stdio.ts";
import type { JsonRpcMessage, McpServerExit, McpTransport } from "./types.ts";
import { decodeMessage, encodeMessage } from "./messages.ts";
import {
  type ProcessLinesEnd,
  readProcessLines,
  StdinWriter,
  stopProcess,
} from "./process_lines.ts";
import { remoteServerEnv, requireUnicode, type StdioServerCommand } from "./stdio_command.ts";

/** Options of {@link ExecutorStdioServerLauncher}. */
export interface ExecutorStdioServerLauncherOptions {
  /** Working directory when the command has none (default: the executor's own). */
  cwd?: string;
  /** Where server stderr and warnings go (default: stderr at info). */
  log?: Logger;
  /** Grace after closing stdin, then after SIGTERM (default 2000 ms each). */
  graceMs?: number;
  /** The caller's environment to copy `envVars` from (default `Deno.env`). */
  callerEnv?: Record<string, string | undefined>;
}

let nextServerNumber = 1;

/**
 * Launches MCP stdio servers on an executor.
 *
 * @example
 * ```ts
 * import { Client } from "@modelcontextprotocol/sdk/client";
 * import { connectExecutor, ExecutorStdioServerLauncher } from "@execbridge/execbridge";
 *
 * const executor = await connectExecutor("ws://devbox:8765", { tokenFile: "token" });
 * const launcher = new ExecutorStdioServerLauncher(executor, { cwd: "/workspace" });
 * const transport = await launcher.launch({ command: "node", args: ["server.js"] });
 * const client = new Client({ name: "agent", version: "1.0.0" });
 * await client.connect(transport);
 * ```
 */
export class ExecutorStdioServerLauncher implements StdioServerLauncher {
  readonly #backend: ExecBackend;
  readonly #options: ExecutorStdioServerLauncherOptions;

  /** Creates a launcher over a backend. */
  constructor(backend: ExecBackend, options: ExecutorStdioServerLauncherOptions = {}) {
    this.#backend = backend;
    this.#options = options;
  }

  /**
   * Starts the server as `mcp-stdio-N` with `pipeStdin: true`. Only `envVars`
   * and `env` are sent; PATH, HOME and the like come from the executor host.
   */
  async launch(command: StdioServerCommand): Promise<ExecutorProcessTransport> {
    const process = await this.startProcess(command);
    return new ExecutorProcessTransport(process, {
      name: command.name ?? command.command,
      log: this.#options.log ?? createLogger({ name: "mcp" }),
      graceMs: this.#options.graceMs ?? 2000,
    });
  }

  /**
   * Starts the server process without a transport (for byte-level bridging),
   * with the same checks, environment and id rules as {@link launch}.
   */
  async startProcess(command: StdioServerCommand): Promise<ExecProcess> {
    requireUnicode("command", command.command);
    for (const arg of command.args ?? []) requireUnicode("argument", arg);
    const { env, envPolicy } = remoteServerEnv(command, this.#options.callerEnv);
    for (const [name, value] of Object.entries(env)) {
      requireUnicode("environment variable name", name);
      requireUnicode("environment variable value", value);
    }
    return await this.#backend.start({
      processId: `mcp-stdio-${nextServerNumber++}`,
      argv: [command.command, ...(command.args ?? [])],
      cwd: command.cwd ?? this.#options.cwd,
      env,
      envPolicy,
      tty: false,
      pipeStdin: true,
    });
  }
}

/** Options of {@link ExecutorProcessTransport}. */
export interface ExecutorProcessTransportOptions {
  /** Server name for logs. */
  name: string;
  /** Where stderr lines and warnings go. */
  log: Logger;
  /** Grace after closing stdin, then after SIGTERM (ms). */
  graceMs: number;
}

/** An MCP SDK transport over an {@link ExecProcess} running a stdio server. */
export class ExecutorProcessTransport implements McpTransport {
  /** Called once when the transport closed (the process ended or the executor was lost). */
  onclose?: () => void;
  /** Called on errors (an over-long line, a lost executor). */
  onerror?: (error: Error) => void;
  /** Called for each message from the server. */
  onmessage?: (message: JsonRpcMessage) => void;
  /** The process running the server. */
  readonly process: ExecProcess;
  readonly #options: ExecutorProcessTransportOptions;
  readonly #stdin: StdinWriter;
  #events: Promise<ProcessLinesEnd> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #gone = Promise.withResolvers<void>();
  #exit: McpServerExit | null = null;

  /** Wraps a started process; events are consumed from `start()` (history replayed first). */
  constructor(process: ExecProcess, options: ExecutorProcessTransportOptions) {
    this.process = process;
    this.#options = options;
    this.#stdin = new StdinWriter(process);
  }

  /** The server's exit code once it exited. */
  get exitCode(): number | null {
    return this.#exit?.exitCode ?? null;
  }

  /** How the server ended (exit code and signal, or the failure), once the transport closed. */
  get exit(): McpServerExit | null {
    return this.#exit;
  }

  /** Starts reading the server's output. */
  start(): Promise<void> {
    if (this.#events !== null) throw new Error("the transport was already started");
    this.#consume();
    return Promise.resolve();
  }

  /**
   * Writes one message (JSON + `\n`) to the server's stdin. Most go without
   * waiting for a write status (a dead server shows up as the transport
   * closing); every MiB one waits, which applies backpressure.
   */
  async send(message: JsonRpcMessage): Promise<void> {
    if (this.#closed || this.#closing !== null) {
      throw new Error(`MCP server ${this.#options.name} is closed`);
    }
    const status = await this.#stdin.write(encodeMessage(message));
    if (status !== "accepted") throw new Error(describeWriteStatus(this.#options.name, status));
  }

  /**
   * Ends the server's stdin, waits, sends SIGTERM, waits, sends SIGKILL (to
   * its process group); resolves once it closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    if (this.#events === null) this.#consume();
    const graceMs = this.#options.graceMs;
    await stopProcess(this.process, { gone: this.#gone.promise, graceMs });
    await settlesWithin(this.#gone.promise, graceMs * 2);
    this.#finish();
  }

  async #consume(): Promise<void> {
    const { name, log } = this.#options;
    this.#events = readProcessLines(this.process, {
      name,
      log,
      onLine: (line) => {
        const message = decodeMessage(line, { name: name, log: log });
        if (message !== null && !this.#closed) this.onmessage?.(message);
      },
    });
    try {
      const end = await this.#events;
      this.#exit = { exitCode: end.exitCode, signal: end.signal };
      if (end.failure !== null) {
        this.#exit.failure = end.failure;
        this.onerror?.(new Error(`MCP server ${name} failed: ${end.failure}`));
      }
    } catch (error) {
      if (error instanceof LineTooLongError) {
        this.onerror?.(new Error(`MCP server ${name}: ${error.message}; closing it`));
        this.process.terminate().catch(() => {});
      } else {
        this.onerror?.(error instanceof Error ? error : new Error(String(error)));
      }
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gone.resolve();
    this.onclose?.();
  }
}

function describeWriteStatus(name: string, status: WriteStatus): string {
  switch (status) {
    case "unknownProcess":
      return `MCP server ${name}: unknown process (it ended and was forgotten)`;
    case "stdinClosed":
      return `MCP server ${name}: stdin closed (the server exited)`;
    case "starting":
      return `MCP server ${name}: process is starting`;
    default:
      return `MCP server ${name}: write ${status}`;
  }
}
