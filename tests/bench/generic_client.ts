/**
 * A generic exec-server client, as Codex speaks the protocol ("JSON-RPC
 * lite": no `jsonrpc` field; JSON text frames; base64 chunks; `file://`
 * paths; a `writeId` on every `process/write`; output from `process/output`
 * notifications), adapted to execbridge's {@link ExecBackend} interface so
 * that the benchmark scenarios (and the MCP stdio launcher) run unchanged
 * on it. It uses none of execbridge's extensions (binary frames, write
 * notifications, `closeStdin`, terminate signals), so it measures the path
 * any third-party client takes:
 *
 * - the `generic` backend of `deno task bench`: this client against an
 *   execbridge `serve` (see {@link openGeneric});
 * - the `codex-ws` and `codex-stdio` peers: this client against
 *   `codex exec-server` (peers_codex.ts).
 *
 * It reuses the client side event machinery of execbridge's remote
 * processes ({@link ProcessEvents}).
 *
 * @module
 */

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
import { clientWebSocketChannel } from "../../src/transport/websocket_channel.ts";
import { connectWebSocket } from "../../src/transport/websocket_client.ts";
import { TEST_TOKEN } from "../support/executor_process.ts";
import {
  countFds,
  type ExecTarget,
  readVmRss,
  startBenchExecutor,
  stopExecutor,
  withDeadline,
} from "./targets.ts";

const encoder = new TextEncoder();

/** An error response of the executor. */
export class GenericRpcError extends Error {
  /** The JSON-RPC error code. */
  readonly code: number;

  /** Creates the error for `method`. */
  constructor(method: string, code: number, message: string) {
    super(`${method}: ${message} (${code})`);
    this.name = "GenericRpcError";
    this.code = code;
  }
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/**
 * A generic exec-server client and an {@link ExecBackend} over it: JSON
 * text, base64 chunks, a `writeId` on every write, `file://` paths, no
 * execbridge extension — what Codex itself speaks.
 */
export class GenericClient implements ExecBackend {
  readonly #channel: TextChannel;
  readonly #pending = new Map<number, Pending>();
  readonly #routes = new Map<string, GenericProcess>();
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
  static async open(channel: TextChannel, cwd = Deno.cwd()): Promise<GenericClient> {
    const connection = new GenericClient(channel, cwd);
    try {
      connection.initializeResult = await withDeadline(
        connection.call("initialize", { clientName: "execbridge-bench", resumeSessionId: null }),
        10_000,
        "the initialize handshake",
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
    const process: GenericProcess = new GenericProcess(id, this, () => {
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
      call.reject(new GenericRpcError(call.method, message.error.code, message.error.message));
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
export function fileUri(path: string): string {
  if (/^[a-z]+:\/\//i.test(path)) return path;
  return new URL(`file://${path.split("/").map(encodeURIComponent).join("/")}`).href;
}

/** A process on the executor, through the generic client. */
class GenericProcess implements ExecProcess {
  readonly processId: string;
  /** Its events in seq order, fed by the connection's notification routing. */
  readonly stream: ProcessEvents;
  readonly #connection: GenericClient;
  #writes = 0;

  constructor(processId: string, connection: GenericClient, onEnded: () => void) {
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

/**
 * Starts an executor ({@link startBenchExecutor}, token auth on, as
 * `openRemote` does) and connects the generic client to it over
 * WebSocket (TCP_NODELAY): the `generic` backend of the benchmark.
 */
export async function openGeneric(): Promise<ExecTarget> {
  const executor = await startBenchExecutor();
  try {
    const socket = await connectWebSocket(executor.url, {
      connectTimeoutMs: 10_000,
      headers: { Authorization: `Bearer ${TEST_TOKEN}` },
    });
    const client = await GenericClient.open(clientWebSocketChannel(socket, executor.url));
    return {
      name: "remote",
      backend: client,
      rss: () => readVmRss(executor.pid),
      fds: () => countFds(executor.pid),
      fresh: openGeneric,
      async close() {
        try {
          await withDeadline(client.close(), 5_000, "closing the generic client");
        } finally {
          await stopExecutor(executor);
        }
      },
    };
  } catch (error) {
    await stopExecutor(executor);
    throw error;
  }
}
