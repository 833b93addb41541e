/**
 * {@link LocalStdioServerLauncher}: an MCP stdio server as a local child in
 * its own process group, behind an MCP SDK `Transport`. It does not use the
 * SDK's `StdioClientTransport`, which under Deno cannot SIGKILL a server that
 * ignores SIGTERM and leaks a timer.
 *
 * @module
 */

import { createLogger, type Logger } from "../log/logger.ts";
import { spawnSession } from "../process/spawn.ts";
import { settlesWithin } from "../util/deadline.ts";
import { stopGracefully } from "../util/graceful_stop.ts";
import { LineSplitter, LineTooLongError, readLines } from "../util/lines.ts";
import type { JsonRpcMessage, McpServerExit, McpTransport } from "./types.ts";
import { decodeMessage, encodeMessage, logStderrLine } from "./messages.ts";
import { localServerEnv, type StdioServerCommand } from "./stdio_command.ts";

/** Something that starts MCP stdio servers and hands back a transport to them. */
export interface StdioServerLauncher {
  /** Starts the server; the transport is not started yet (the SDK Client does that). */
  launch(command: StdioServerCommand): Promise<McpTransport>;
}

/** Options of {@link LocalStdioServerLauncher}. */
export interface LocalStdioServerLauncherOptions {
  /** Working directory when the command has none (default: this process's). */
  cwd?: string;
  /** Where server stderr and warnings go (default: stderr at info). */
  log?: Logger;
  /** Grace after closing stdin, then after SIGTERM (default 2000 ms each). */
  graceMs?: number;
  /** The caller's environment to copy defaults and `envVars` from (default `Deno.env`). */
  callerEnv?: Record<string, string | undefined>;
}

/**
 * Launches MCP stdio servers as local child processes.
 *
 * @example
 * ```ts
 * import { Client } from "@modelcontextprotocol/sdk/client";
 * import { LocalStdioServerLauncher } from "@execbridge/execbridge";
 *
 * const transport = await new LocalStdioServerLauncher().launch({
 *   command: "npx",
 *   args: ["-y", "@modelcontextprotocol/server-memory"],
 * });
 * const client = new Client({ name: "agent", version: "1.0.0" });
 * await client.connect(transport);
 * console.log((await client.listTools()).tools.map((t) => t.name));
 * await client.close();
 * ```
 */
export class LocalStdioServerLauncher implements StdioServerLauncher {
  readonly #options: LocalStdioServerLauncherOptions;

  /** Creates a launcher. */
  constructor(options: LocalStdioServerLauncherOptions = {}) {
    this.#options = options;
  }

  /** Spawns the server in its own process group. */
  launch(command: StdioServerCommand): Promise<McpTransport> {
    const env = localServerEnv(command, this.#options.callerEnv);
    const child = spawnSession([command.command, ...(command.args ?? [])], {
      cwd: command.cwd ?? this.#options.cwd ?? Deno.cwd(),
      env,
      pipeStdin: true,
    });
    return Promise.resolve(
      new LocalStdioTransport(child, {
        name: command.name ?? command.command,
        log: this.#options.log ?? createLogger({ name: "mcp" }),
        graceMs: this.#options.graceMs ?? 2000,
      }),
    );
  }
}

/** A transport over a local child's stdin/stdout. */
class LocalStdioTransport implements McpTransport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JsonRpcMessage) => void;
  readonly #child: Deno.ChildProcess;
  readonly #name: string;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #readers: Promise<void>[] = [];
  #streamReaders: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #started = false;
  #closing: Promise<void> | null = null;
  #exited = false;
  #exit: McpServerExit | null = null;

  constructor(child: Deno.ChildProcess, options: { name: string; log: Logger; graceMs: number }) {
    this.#child = child;
    this.#name = options.name;
    this.#log = options.log;
    this.#graceMs = options.graceMs;
    this.#stdin = child.stdin.getWriter();
    child.status.then((status) => {
      this.#exited = true;
      this.#exit = { exitCode: status.code, signal: status.signal };
      this.#killGroup("SIGKILL"); // Whatever it left behind in its group.
    });
  }

  /** The server's pid (also its process group id). */
  get pid(): number {
    return this.#child.pid;
  }

  /** How the server exited, once it did. */
  get exit(): McpServerExit | null {
    return this.#exit;
  }

  start(): Promise<void> {
    if (this.#started) throw new Error("the transport was already started");
    this.#started = true;
    this.#readers = [this.#readStdout(), this.#readStderr()];
    // The server exiting on its own closes the transport once its output is read.
    Promise.all([this.#child.status, ...this.#readers]).then(() => this.close());
    return Promise.resolve();
  }

  async send(message: JsonRpcMessage): Promise<void> {
    if (this.#closing !== null || this.#exited) {
      throw new Error(`MCP server ${this.#name} is not running`);
    }
    await this.#stdin.write(encodeMessage(message));
  }

  /** Ends stdin, waits, SIGTERMs the group, waits, SIGKILLs the group; resolves once gone. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    let eof = false;
    await stopGracefully({
      closeStdin: () => this.#stdin.close().finally(() => eof = true),
      signal: (signal) => this.#killGroup(signal),
      gone: this.#child.status,
    }, this.#graceMs);
    // A server that stopped reading keeps a pending write (and so the EOF) waiting: give up on
    // it (not awaited: aborting waits for the pending write too).
    if (!eof) this.#stdin.abort().catch(() => {});
    await this.#child.status;
    this.#killGroup("SIGKILL");
    // Output ends once every process holding the pipes is gone; one that
    // escaped the group may hold them open: stop reading then.
    if (!this.#started) {
      await Promise.all([this.#child.stdout.cancel(), this.#child.stderr.cancel()]);
    } else if (!await settlesWithin(Promise.all(this.#readers), this.#graceMs)) {
      await Promise.all(this.#streamReaders.map((r) => r.cancel().catch(() => {})));
      await Promise.all(this.#readers);
    }
    this.onclose?.();
  }

  #killGroup(signal: Deno.Signal): void {
    try {
      Deno.kill(-this.#child.pid, signal);
    } catch {
      // The group is gone.
    }
  }

  #readStdout(): Promise<void> {
    const splitter = new LineSplitter();
    const onLine = (line: Uint8Array) => {
      const message = decodeMessage(line, { name: this.#name, log: this.#log });
      if (message !== null) this.onmessage?.(message);
    };
    return this.#pump(this.#child.stdout, splitter, onLine);
  }

  #readStderr(): Promise<void> {
    const splitter = new LineSplitter(64 * 1024, { split: true });
    return this.#pump(
      this.#child.stderr,
      splitter,
      (line) => logStderrLine(line, { name: this.#name, log: this.#log }),
    );
  }

  async #pump(
    stream: ReadableStream<Uint8Array>,
    splitter: LineSplitter,
    onLine: (line: Uint8Array) => void,
  ): Promise<void> {
    const reader = stream.getReader();
    this.#streamReaders.push(reader);
    try {
      await readLines(reader, splitter, onLine);
    } catch (error) {
      if (error instanceof LineTooLongError) {
        this.onerror?.(new Error(`MCP server ${this.#name}: ${error.message}; closing it`));
        await reader.cancel().catch(() => {});
        this.close();
      }
    } finally {
      reader.releaseLock();
    }
  }
}
