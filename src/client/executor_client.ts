/**
 * `connectExecutor`: a connection to an executor, its session, the process
 * API as an {@link ExecBackend}, and the executor's filesystem.
 *
 * @module
 */

import { resolveClientToken } from "../auth/token.ts";
import type { ExecFileSystem } from "../fs/file_system.ts";
import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { decodeOutputFrame } from "../protocol/binary_output.ts";
import { Method } from "../protocol/methods.ts";
import { toFileUri } from "../protocol/paths.ts";
import type { EnvironmentInfo } from "../protocol/types.ts";
import {
  type InitializeParams,
  notifications,
  parseParams,
  results,
  startParams,
} from "../protocol/schemas.ts";
import type { StartParams } from "../protocol/types.ts";
import type { TextChannel } from "../transport/channel.ts";
import { clientWebSocketChannel } from "../transport/websocket_channel.ts";
import { DisconnectedError, RpcClient } from "../rpc/rpc_client.ts";
import { connectWebSocket } from "../transport/websocket_client.ts";
import { withTimeout } from "../util/deadline.ts";
import { readEnv } from "../util/env.ts";
import { expandHome } from "../util/home.ts";
import { RemoteFileSystem } from "./remote_file_system.ts";
import { type RemoteFetch, RemoteHttp } from "./remote_http.ts";
import { RemoteProcess } from "./remote_process.ts";
import type { ExecBackend, ExecProcess } from "../exec/types.ts";

/** Options of {@link connectExecutor}. */
export interface ConnectExecutorOptions {
  /**
   * Bearer token. Default: `tokenFile`, else the `EXECBRIDGE_TOKEN`
   * environment variable, else the default token file
   * `${XDG_STATE_HOME:-~/.local/state}/execbridge/token` when it exists.
   */
  token?: string;
  /** Read the token from this file. */
  tokenFile?: string;
  /** Name sent in `initialize` (default `execbridge-client`). */
  clientName?: string;
  /** Re-attach to this detached session instead of creating one. */
  resumeSessionId?: string;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Give up on the initialize handshake after this long (default 10 s). */
  initializeTimeoutMs?: number;
  /** PEM CA certificates trusted for `wss://` (self-signed executors). */
  caCerts?: string[];
  /** A PEM CA file to trust for `wss://` (default: `EXECBRIDGE_TLS_CA`). */
  caFile?: string;
  /** Use an already open channel (e.g. `serve --listen stdio` over ssh) instead of `url`. */
  channel?: TextChannel;
  /**
   * Ask for output as binary frames instead of base64 JSON (default true;
   * an execbridge extension, ignored by other executors).
   */
  binaryOutput?: boolean;
  /**
   * Send stdin as binary frames instead of base64 JSON when the executor
   * takes them (default true; an execbridge extension).
   */
  binaryWrites?: boolean;
}

/** A connected, initialized executor session. */
export interface ExecutorClient extends ExecBackend, AsyncDisposable {
  /** The session id; pass it as `resumeSessionId` to resume after a disconnect. */
  readonly sessionId: string;
  /** The executor's filesystem. */
  readonly fs: ExecFileSystem;
  /**
   * What the executor says about its environment (its `initialize` answer):
   * shell, version, directories, capabilities. Null from executors of the
   * older protocol.
   */
  readonly environmentInfo: EnvironmentInfo | null;
  /**
   * `fetch`, made by the executor (`http/request`): reaches what the
   * executor's network reaches. The body streams in as it arrives.
   */
  readonly fetch: RemoteFetch;
  /** The latched disconnect message, or null while connected. */
  readonly disconnected: string | null;
  /** Resolves with the disconnect message once the connection is lost or closed. */
  readonly done: Promise<string>;
  /** Starts a process on the executor. */
  start(params: StartParams): Promise<ExecProcess>;
  /**
   * A handle on a process the session already has — after `resumeSessionId`,
   * the processes started before the disconnect. Its events begin with what
   * the executor retained (output evicted from the 1 MiB window is gone).
   * Rejects with -32600 for an unknown id.
   */
  attach(processId: string): Promise<ExecProcess>;
  /** Closes the connection. The session's processes keep running until the session TTL expires. */
  close(): Promise<void>;
}

/** The environment variable naming a PEM CA file for `wss://` executors. */
export const TLS_CA_ENV = "EXECBRIDGE_TLS_CA";

async function resolveCaCerts(options: ConnectExecutorOptions): Promise<string[] | undefined> {
  if (options.caCerts !== undefined) return options.caCerts;
  const file = options.caFile ?? readEnv(TLS_CA_ENV);
  if (file === undefined) return undefined;
  try {
    return [await Deno.readTextFile(expandHome(file))];
  } catch (error) {
    throw new Error(`cannot read the CA file ${file}: ${(error as Error).message}`);
  }
}

/**
 * Connects to an executor and initializes a session.
 *
 * @example
 * ```ts
 * import { connectExecutor } from "@execbridge/execbridge";
 *
 * const executor = await connectExecutor("ws://127.0.0.1:8765", { token: "…" });
 * const proc = await executor.start({ processId: "p1", argv: ["uname", "-a"] });
 * const { exitCode } = await proc.wait();
 * const { chunks } = await proc.read();
 * console.log(exitCode, new TextDecoder().decode(chunks[0].chunk));
 * await executor.close();
 * ```
 */
export async function connectExecutor(
  url: string | URL,
  options: ConnectExecutorOptions = {},
): Promise<ExecutorClient> {
  let channel = options.channel;
  if (channel === undefined) {
    const token = await resolveClientToken(options);
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const socket = await connectWebSocket(url, {
      headers,
      // The largest response: fs/readFile of 512 MiB in base64, plus its envelope.
      maxMessageBytes: 700 * 1024 * 1024,
      caCerts: await resolveCaCerts(options),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    });
    const u = new URL(url);
    channel = clientWebSocketChannel(socket, `${u.protocol}//${u.host}`);
  }
  const connection = new ExecutorConnection(channel);
  try {
    await connection.initialize(options);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

class ExecutorConnection implements ExecutorClient {
  readonly fs: ExecFileSystem;
  readonly done: Promise<string>;
  #sessionId = "";
  #environmentInfo: EnvironmentInfo | null = null;
  /** Paths go as `file://` URIs: the executor speaks the current protocol (it sent environmentInfo). */
  #uris = false;
  #http: RemoteHttp | null = null;
  #writeNotifications = false;
  #binaryWrites = false;
  readonly #binaryChannel: boolean;
  readonly #rpc: RpcClient;
  readonly #routes = new Map<string, RemoteProcess>();

  constructor(channel: TextChannel) {
    this.#binaryChannel = channel.binary;
    let resolveDone: (message: string) => void = () => {};
    this.done = new Promise((resolve) => resolveDone = resolve);
    this.#rpc = new RpcClient(channel, {
      onNotification: (method, params) => this.#route(method, params),
      onBinary: (data) => {
        const frame = decodeOutputFrame(data);
        if (frame === null) return;
        this.#routes.get(frame.processId)?.accept({
          type: "output",
          seq: frame.seq,
          stream: frame.stream,
          chunk: frame.chunk,
        });
      },
      onDisconnect: (message) => {
        for (const process of [...this.#routes.values()]) process.fail(message);
        this.#routes.clear();
        this.#http?.fail(message);
        resolveDone(message);
      },
    });
    this.fs = new RemoteFileSystem(this.#rpc, { uris: () => this.#uris });
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  get environmentInfo(): EnvironmentInfo | null {
    return this.#environmentInfo;
  }

  readonly fetch: RemoteFetch = (input, init) => {
    if (this.#http === null) return Promise.reject(new Error("the executor is not initialized"));
    return this.#http.fetch(input, init);
  };

  get disconnected(): string | null {
    return this.#rpc.disconnected;
  }

  async initialize(options: ConnectExecutorOptions): Promise<void> {
    const timeoutMs = options.initializeTimeoutMs ?? 10_000;
    const message = `timed out waiting for exec-server initialize handshake after ${timeoutMs} ms`;
    const params: InitializeParams = {
      clientName: options.clientName ?? "execbridge-client",
      resumeSessionId: options.resumeSessionId ?? null,
      binaryOutput: options.binaryOutput ?? true,
      binaryWrites: options.binaryWrites ?? true,
    };
    const raw = await withTimeout(this.#rpc.call(Method.initialize, params), timeoutMs, {
      error: () => new Error(message),
      onTimeout: () => this.#rpc.disconnect(message),
    });
    const result = results.initialize.parse(raw);
    this.#sessionId = result.sessionId;
    this.#environmentInfo = result.environmentInfo ?? null;
    this.#uris = this.#environmentInfo !== null;
    this.#writeNotifications = result.writeNotifications === true;
    // Write notifications are execbridge's: so is cancelling an HTTP body.
    this.#http = new RemoteHttp(this.#rpc, { cancellable: this.#writeNotifications });
    // Only when asked for and possible here, whatever a misbehaving executor answers.
    this.#binaryWrites = (options.binaryWrites ?? true) && result.binaryWrites === true &&
      this.#binaryChannel;
    this.#rpc.notify(Method.initialized, {});
  }

  async start(params: StartParams): Promise<ExecProcess> {
    const disconnected = this.#rpc.disconnected;
    if (disconnected !== null) throw new DisconnectedError(disconnected);
    const checked = parseParams(startParams, params, { method: Method.processStart });
    const id = checked.processId;
    if (this.#routes.has(id)) {
      // The executor would refuse it too; refusing here keeps one route per id.
      throw new RpcError(INVALID_REQUEST, `process ${id} already exists`);
    }
    // Register before starting so that early notifications are captured.
    const process = this.#addRoute(checked);
    try {
      // The current protocol wants paths as URIs, April's native ones (execbridge takes both).
      const cwd = checked.cwd == null || !this.#uris ? checked.cwd : toFileUri(checked.cwd);
      const raw = await this.#rpc.call(Method.processStart, { ...checked, cwd });
      results.start.parse(raw);
    } catch (error) {
      this.#removeRoute(process);
      throw error;
    }
    return process;
  }

  async attach(processId: string): Promise<ExecProcess> {
    const disconnected = this.#rpc.disconnected;
    if (disconnected !== null) throw new DisconnectedError(disconnected);
    const existing = this.#routes.get(processId);
    if (existing !== undefined) return existing;
    // Routed first, so that nothing pushed during the catch-up read is lost.
    const process = this.#addRoute({ processId, argv: [] });
    try {
      process.catchUp(await process.read({ afterSeq: 0 }));
    } catch (error) {
      this.#removeRoute(process);
      throw error;
    }
    return process;
  }

  close(): Promise<void> {
    return this.#rpc.disconnect("closed by the client");
  }

  /** A process handle, routed (its events reach it) until it closes. */
  #addRoute(params: StartParams): RemoteProcess {
    const process: RemoteProcess = new RemoteProcess(params, this.#rpc, {
      onClosed: () => this.#removeRoute(process),
      notifyWrites: this.#writeNotifications,
      binaryWrites: this.#binaryWrites,
    });
    this.#routes.set(params.processId, process);
    return process;
  }

  #removeRoute(process: RemoteProcess): void {
    if (this.#routes.get(process.processId) === process) this.#routes.delete(process.processId);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #route(method: string, params: unknown): void {
    if (method === Method.httpRequestBodyDelta) {
      this.#http?.deliver(params);
      return;
    }
    const schema = Object.hasOwn(notifications, method)
      ? notifications[method as keyof typeof notifications]
      : undefined;
    const parsed = schema?.safeParse(params);
    if (parsed?.success) this.#routes.get(parsed.data.processId)?.accept(parsed.data.event);
  }
}
