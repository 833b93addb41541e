/**
 * The Codex exec-server (`codex exec-server`, from npm `@openai/codex`) as a
 * benchmark peer, over WebSocket and over stdio.
 *
 * execbridge's own client cannot drive it: Codex 0.169 wants `cwd` as a
 * `file://` URI, and a `writeId` (idempotency key) on every `process/write`.
 * So this file speaks to it with a minimal JSON-RPC client of its own
 * ("JSON-RPC lite": no `jsonrpc` field, as Codex's own client sends) over
 * `connectWebSocket` (TCP_NODELAY) or `lineChannel`, and adapts it to
 * execbridge's {@link ExecBackend} interface. The adapter reuses the client
 * side event machinery of execbridge's remote processes
 * ({@link ProcessEvents}), so the benchmark scenarios (and the MCP stdio
 * launcher) run unchanged against it.
 *
 * @module
 */

import { connectExecutor } from "../../mod.ts";
import type {
  ExecBackend,
  ExecProcess,
  ExecProcessEvent,
  ExitStatus,
  ReadOptions,
} from "../../src/exec/types.ts";
import type {
  ReadResponse,
  StartParams,
  TerminateSignal,
  WriteStatus,
} from "../../src/protocol/types.ts";
import { ProcessEvents } from "../../src/exec/process_events.ts";
import { waitForExit } from "../../src/exec/wait.ts";
import type { TextChannel } from "../../src/transport/channel.ts";
import { lineChannel } from "../../src/transport/line_channel.ts";
import { clientWebSocketChannel } from "../../src/transport/websocket_channel.ts";
import { connectWebSocket } from "../../src/transport/websocket_client.ts";
import { PeerProcess, PEERS_DIR } from "./peers_process.ts";
import { type ExecTarget, readVmRss, withDeadline } from "./targets.ts";

const encoder = new TextEncoder();

/** How a Codex exec-server is reached. */
export type CodexTransport = "ws" | "stdio";

/** An error response of the Codex exec-server. */
export class CodexRpcError extends Error {
  /** The JSON-RPC error code. */
  readonly code: number;

  /** Creates the error for `method`. */
  constructor(method: string, code: number, message: string) {
    super(`${method}: ${message} (${code})`);
    this.name = "CodexRpcError";
    this.code = code;
  }
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** The environment of the exec-server itself: ours (it is `envPolicy: core`'s source), own CODEX_HOME. */
function serverEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.EXECBRIDGE_TOKEN;
  // Keep it away from the user's ~/.codex (config.toml, logs, state).
  env.CODEX_HOME = `${PEERS_DIR}codex-home`;
  return env;
}

/** A running `codex exec-server` and the channel to it. */
export interface CodexServer {
  /** The server process. */
  readonly process: PeerProcess;
  /** `ws://…` for WebSocket, null for stdio. */
  readonly url: string | null;
  /** Opens the channel of a new connection (stdio: only once). */
  channel(): Promise<TextChannel>;
  /** Stops the server and every process it started. */
  stop(): Promise<void>;
}

/** Starts `codex exec-server --listen ws://127.0.0.1:0` or `--listen stdio`. */
export async function startCodexServer(
  binary: string,
  transport: CodexTransport,
): Promise<CodexServer> {
  await Deno.mkdir(`${PEERS_DIR}codex-home`, { recursive: true });
  const listen = transport === "ws" ? "ws://127.0.0.1:0" : "stdio";
  const process = new PeerProcess(
    `codex exec-server --listen ${listen}`,
    binary,
    ["exec-server", "--listen", listen],
    { env: serverEnv(), stdin: transport === "stdio" ? "piped" : "null" },
  );
  try {
    if (transport === "ws") {
      const url = await process.waitForLine((line) => line.startsWith("ws://"), 30_000);
      return {
        process,
        url,
        async channel() {
          const socket = await connectWebSocket(url, { connectTimeoutMs: 10_000 });
          return clientWebSocketChannel(socket, url);
        },
        stop: () => process.stop(3000, "SIGTERM"),
      };
    }
    let used = false;
    return {
      process,
      url: null,
      channel() {
        if (used) return Promise.reject(new Error("a stdio exec-server has one connection"));
        used = true;
        return Promise.resolve(
          lineChannel(process.child.stdout, process.child.stdin, { peer: "codex stdio" }),
        );
      },
      stop: () => process.stop(3000, "SIGTERM"),
    };
  } catch (error) {
    await process.stop(0);
    throw error;
  }
}

/**
 * A minimal JSON-RPC client for the Codex exec-server and an
 * {@link ExecBackend} over it.
 */
export class CodexConnection implements ExecBackend {
  readonly #channel: TextChannel;
  readonly #pending = new Map<number, Pending>();
  readonly #routes = new Map<string, CodexProcess>();
  readonly #cwd: string;
  #nextId = 1;
  #disconnected: string | null = null;
  /** The `initialize` result (session id, environment info). */
  initializeResult: Record<string, unknown> = {};

  private constructor(channel: TextChannel, cwd: string) {
    this.#channel = channel;
    this.#cwd = cwd;
    channel.onmessage = (text) => this.#onMessage(text);
    channel.onclose = (reason) => this.#disconnect(`exec-server transport disconnected: ${reason}`);
  }

  /** Runs the handshake (`initialize`, then `initialized`) on `channel`. */
  static async open(channel: TextChannel, cwd = Deno.cwd()): Promise<CodexConnection> {
    const connection = new CodexConnection(channel, cwd);
    try {
      connection.initializeResult = await withDeadline(
        connection.call("initialize", { clientName: "execbridge-bench", resumeSessionId: null }),
        10_000,
        "the Codex initialize handshake",
      ) as Record<string, unknown>;
      connection.notify("initialized", {});
      return connection;
    } catch (error) {
      await connection.close();
      throw error;
    }
  }

  /** Sends a request; resolves with its result. */
  call(method: string, params: unknown): Promise<unknown> {
    if (this.#disconnected !== null) return Promise.reject(new Error(this.#disconnected));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject });
      this.#channel.send(`{"id":${id},"method":"${method}","params":${JSON.stringify(params)}}`);
    });
  }

  /** Sends a notification. */
  notify(method: string, params: unknown): void {
    if (this.#disconnected !== null) throw new Error(this.#disconnected);
    this.#channel.send(JSON.stringify({ method, params }));
  }

  /**
   * Starts a process. execbridge's start params are mapped to Codex's: `cwd`
   * becomes a `file://` URI (required), `env` and `tty` are required,
   * `envPolicy` needs all of its fields.
   */
  async start(params: StartParams): Promise<ExecProcess> {
    const id = params.processId;
    if (this.#routes.has(id)) throw new Error(`process ${id} already exists`);
    const process: CodexProcess = new CodexProcess(id, this, () => {
      if (this.#routes.get(id) === process) this.#routes.delete(id);
    });
    this.#routes.set(id, process);
    const wire: Record<string, unknown> = {
      processId: id,
      argv: params.argv,
      cwd: fileUri(params.cwd ?? this.#cwd),
      env: params.env ?? {},
      tty: params.tty ?? false,
      pipeStdin: params.pipeStdin ?? false,
    };
    if (params.envPolicy) {
      wire.envPolicy = {
        inherit: params.envPolicy.inherit,
        ignoreDefaultExcludes: params.envPolicy.ignoreDefaultExcludes ?? false,
        exclude: params.envPolicy.exclude ?? [],
        set: params.envPolicy.set ?? {},
        includeOnly: params.envPolicy.includeOnly ?? [],
      };
    }
    if (params.arg0 != null) wire.arg0 = params.arg0;
    try {
      await this.call("process/start", wire);
    } catch (error) {
      if (this.#routes.get(id) === process) this.#routes.delete(id);
      throw error;
    }
    return process;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#disconnect("exec-server transport disconnected: closed by the client");
    await this.#channel.close();
  }

  #disconnect(message: string): void {
    if (this.#disconnected !== null) return;
    this.#disconnected = message;
    const error = new Error(message);
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
    for (const process of this.#routes.values()) process.stream.fail(message);
    this.#routes.clear();
  }

  #onMessage(text: string): void {
    let message: {
      id?: number | string | null;
      method?: string;
      params?: Record<string, unknown>;
      result?: unknown;
      error?: { code: number; message: string };
    };
    try {
      message = JSON.parse(text);
    } catch {
      this.#disconnect("exec-server transport disconnected: the server sent a non-JSON message");
      void this.#channel.close();
      return;
    }
    if (message.method !== undefined) {
      if (message.id === undefined || message.id === null) {
        this.#route(message.method, message.params ?? {});
      }
      return;
    }
    if (typeof message.id !== "number") return;
    const call = this.#pending.get(message.id);
    if (call === undefined) return;
    this.#pending.delete(message.id);
    if (message.error !== undefined) {
      call.reject(new CodexRpcError(call.method, message.error.code, message.error.message));
    } else {
      call.resolve(message.result);
    }
  }

  #route(method: string, params: Record<string, unknown>): void {
    const process = this.#routes.get(params.processId as string);
    if (process === undefined) return;
    const seq = params.seq as number;
    switch (method) {
      case "process/output":
        process.stream.accept({
          type: "output",
          seq,
          stream: params.stream as "stdout" | "stderr" | "pty",
          chunk: Uint8Array.fromBase64(params.chunk as string),
        });
        return;
      case "process/exited":
        process.stream.accept({
          type: "exited",
          seq,
          exitCode: params.exitCode as number,
          signal: (params.signal as string | undefined) ?? null,
        });
        return;
      case "process/closed":
        process.stream.accept({ type: "closed", seq });
        return;
    }
  }
}

/** `cwd` as the `file://` URI Codex 0.169 requires (a URI passes through). */
function fileUri(path: string): string {
  if (/^[a-z]+:\/\//i.test(path)) return path;
  return new URL(`file://${path.split("/").map(encodeURIComponent).join("/")}`).href;
}

/** A process on a Codex exec-server. */
class CodexProcess implements ExecProcess {
  readonly processId: string;
  /** Its events in seq order, fed by the connection's notification routing. */
  readonly stream: ProcessEvents;
  readonly #connection: CodexConnection;
  #writes = 0;

  constructor(processId: string, connection: CodexConnection, onEnded: () => void) {
    this.processId = processId;
    this.#connection = connection;
    this.stream = new ProcessEvents({
      onEnded,
      recover: (afterSeq) => this.read({ afterSeq }),
    });
  }

  events(): AsyncIterableIterator<ExecProcessEvent> {
    return this.stream.subscribe();
  }
  listen(handler: (event: ExecProcessEvent) => void): () => void {
    return this.stream.listen(handler);
  }

  async read(options: ReadOptions = {}): Promise<ReadResponse> {
    const result = await this.#connection.call("process/read", {
      processId: this.processId,
      afterSeq: options.afterSeq ?? 0,
      maxBytes: options.maxBytes ?? null,
      waitMs: options.waitMs ?? 0,
    }) as {
      chunks: { seq: number; stream: "stdout" | "stderr" | "pty"; chunk: string }[];
      nextSeq: number;
      exited: boolean;
      exitCode: number | null;
      closed: boolean;
      failure?: string | null;
    };
    return {
      chunks: result.chunks.map((c) => ({
        seq: c.seq,
        stream: c.stream,
        chunk: Uint8Array.fromBase64(c.chunk),
      })),
      nextSeq: result.nextSeq,
      exited: result.exited,
      exitCode: result.exitCode,
      closed: result.closed,
      failure: result.failure ?? null,
    };
  }

  #writeParams(data: Uint8Array | string): Record<string, string> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    // Codex 0.169: a required, non-empty idempotency key per write.
    return { processId: this.processId, chunk: bytes.toBase64(), writeId: `w${++this.#writes}` };
  }

  async write(data: Uint8Array | string): Promise<WriteStatus> {
    const result = await this.#connection.call("process/write", this.#writeParams(data));
    return (result as { status: WriteStatus }).status;
  }

  send(data: Uint8Array | string): void {
    this.#connection.call("process/write", this.#writeParams(data)).catch(() => {});
  }

  /**
   * Codex has no way to close a child's stdin (no `closeStdin`), so this
   * ends the process instead: the MCP launcher's graceful stop (EOF, grace,
   * SIGTERM…) would otherwise wait out its grace periods.
   */
  async closeStdin(): Promise<WriteStatus> {
    await this.terminate();
    return "accepted";
  }

  /** Codex's terminate always sends SIGKILL to the process group; `signal` is ignored. */
  async terminate(_options: { signal?: TerminateSignal } = {}): Promise<boolean> {
    const result = await this.#connection.call("process/terminate", {
      processId: this.processId,
    });
    return (result as { running: boolean }).running;
  }

  wait(): Promise<ExitStatus> {
    return waitForExit((handler) => this.stream.listen(handler));
  }
}

/** An {@link ExecTarget} over a Codex exec-server, for the shared scenarios. */
export function codexTarget(server: CodexServer, connection: CodexConnection): ExecTarget {
  return {
    name: "remote",
    backend: connection,
    rss: () => readVmRss(server.process.pid),
    fds: () => Promise.resolve(0),
    close: () => connection.close(),
  };
}

/**
 * What execbridge's own client makes of this exec-server: whether
 * `connectExecutor` (with its `binaryOutput` extension in `initialize`) gets
 * a session, and how a `process/start` and `process/write` as it sends them
 * fare. Each finding is one line.
 */
export async function probeExecbridgeClient(url: string): Promise<string[]> {
  const notes: string[] = [];
  let executor;
  try {
    executor = await connectExecutor(url, { clientName: "execbridge-bench-probe" });
    notes.push(
      'connectExecutor: initialize (with `jsonrpc: "2.0"` and execbridge\'s extra ' +
        "`binaryOutput` param) is accepted: unknown fields are ignored, output still comes " +
        "as base64 JSON notifications, responses carry no `jsonrpc` field",
    );
  } catch (error) {
    notes.push(`connectExecutor: initialize failed: ${messageOf(error)}`);
    return notes;
  }
  try {
    try {
      const proc = await executor.start({ processId: "probe-1", argv: ["true"], env: {} });
      await withDeadline(proc.wait(), 5000, "probe-1").catch(() => {});
      notes.push("process/start without cwd/tty: accepted");
    } catch (error) {
      notes.push(`process/start as execbridge sends it (no cwd, no tty): ${messageOf(error)}`);
    }
    try {
      const proc = await executor.start({
        processId: "probe-2",
        argv: ["true"],
        cwd: Deno.cwd(),
        env: {},
        tty: false,
      });
      await withDeadline(proc.wait(), 5000, "probe-2").catch(() => {});
      notes.push("process/start with a native cwd path: accepted");
    } catch (error) {
      notes.push(`process/start with a native cwd path: ${messageOf(error)}`);
    }
    try {
      const proc = await executor.start({
        processId: "probe-3",
        argv: ["cat"],
        cwd: fileUri(Deno.cwd()),
        env: {},
        tty: false,
        pipeStdin: true,
      });
      try {
        notes.push(`process/write without writeId: ${await proc.write("x\n")}`);
      } catch (error) {
        notes.push(`process/write without writeId: ${messageOf(error)}`);
      }
      try {
        await proc.terminate({ signal: "SIGTERM" });
        const status = await withDeadline(proc.wait(), 5000, "probe-3");
        notes.push(
          `process/terminate with signal SIGTERM: the signal field is ignored, cat got SIGKILL ` +
            `(exitCode ${status.exitCode}, no signal name in process/exited)`,
        );
      } catch (error) {
        notes.push(`process/terminate with signal: ${messageOf(error)}`);
      }
    } catch (error) {
      notes.push(`process/start with a file:// cwd: ${messageOf(error)}`);
    }
  } finally {
    await executor.close().catch(() => {});
  }
  return notes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
