/**
 * `connectExecutor`: a connection to an executor, its session, the process
 * API as an {@link ExecBackend}, and the executor's filesystem.
 *
 * Long (~590 lines) on purpose: the connection, its session, and reconnect
 * and resume are one state machine (a resume touches every process, every
 * held call and every HTTP body in flight); the process, fs and HTTP calls
 * are apart, in `remote_*.ts`.
 *
 * @module
 */

import { resolveClientToken } from "../auth/token.ts";
import type { ExecFileSystem } from "../fs/file_system.ts";
import { INVALID_REQUEST, RpcError, SESSION_ATTACHED } from "../protocol/errors.ts";
import { decodeOutputFrame } from "../protocol/binary_output.ts";
import { Method } from "../protocol/methods.ts";
import { toFileUri } from "../protocol/paths.ts";
import type { EnvironmentInfo } from "../protocol/types.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { InitializeParams } from "../protocol/schemas.ts";
import { parseParams } from "../protocol/validate.ts";
import type { StartParams } from "../protocol/types.ts";
import type { TextChannel } from "../transport/channel.ts";
import { clientWebSocketChannel } from "../transport/websocket_channel.ts";
import { DisconnectedError, RpcClient } from "../rpc/rpc_client.ts";
import { connectWebSocket, WebSocketHandshakeError } from "../transport/websocket_client.ts";
import { programChannel, type ProgramTarget } from "../transport/program_channel.ts";
import { delay, withTimeout } from "../util/deadline.ts";
import { readEnv } from "../util/env.ts";
import { expandHome } from "../util/home.ts";
import { RemoteFileSystem } from "./remote_file_system.ts";
import { type RemoteFetch, RemoteHttp } from "./remote_http.ts";
import { RemoteProcess } from "./remote_process.ts";
import type { ExecBackend, ExecProcess } from "../exec/types.ts";

/**
 * Where an executor is: a `ws://` or `wss://` URL, or a program to start
 * that speaks the protocol on its stdio (`serve --listen stdio`, locally or
 * through `ssh`).
 */
export type ExecutorTarget = string | URL | ProgramTarget;

/** Whether `target` is a program to start (not a URL). */
export function isProgramTarget(target: ExecutorTarget): target is ProgramTarget {
  return typeof target === "object" && !(target instanceof URL);
}

/** A short name for an executor target in messages: its URL, or its command line. */
export function describeTarget(target: ExecutorTarget): string {
  if (!isProgramTarget(target)) return String(target);
  return [target.program, ...target.args ?? []].join(" ");
}

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
  /**
   * Survive network loss (default on, `{ windowMs: 30_000 }`): when the
   * connection drops or goes silent, reconnect with backoff and jitter,
   * resume the session, fill each process's missed events with
   * `process/read`, and send again the calls not answered yet (the executor
   * answers each once, writes included). Calls made meanwhile wait. If the
   * executor refuses connections (it is gone), no longer knows the session
   * (it restarted), or the window passes, the connection fails as without
   * reconnect. `false`: fail at the first disconnect. Not with `channel`.
   */
  reconnect?: false | ReconnectOptions;
  /**
   * Dead-peer detection (WebSocket): ping a silent executor after this many
   * ms and give the link up after three silent intervals (default 5000: a
   * dead link is noticed within 15 s). 0: never.
   */
  pingIntervalMs?: number;
  /** Called on every change of the connection state (connected, reconnecting, closed). */
  onStateChange?: (change: ConnectionStateChange) => void;
}

/** How {@link connectExecutor} reconnects. */
export interface ReconnectOptions {
  /**
   * How long after a loss to keep trying (default 30 s). The executor keeps
   * a detached session for `--session-ttl-ms` (60 s by default): keep this
   * below it minus the dead-peer detection time.
   */
  windowMs?: number;
}

/** The state of an executor connection. */
export type ConnectionState = "connected" | "reconnecting" | "closed";

/** A change of the connection state. */
export interface ConnectionStateChange {
  /** The new state. */
  state: ConnectionState;
  /** Why: what was lost (`reconnecting`), or the final message (`closed`). */
  reason?: string;
  /** For `connected` after `reconnecting`: how long the connection was down, in ms. */
  downMs?: number;
  /** For `connected` after `reconnecting`: connection attempts it took. */
  attempts?: number;
}

/** Default resume window of {@link ReconnectOptions}. */
export const DEFAULT_RESUME_WINDOW_MS = 30_000;
/** Default dead-peer ping interval. */
export const DEFAULT_PING_INTERVAL_MS = 5_000;

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
  /** The latched disconnect message, or null while connected (or reconnecting). */
  readonly disconnected: string | null;
  /** Connected, reconnecting after a loss, or closed. */
  readonly state: ConnectionState;
  /**
   * One round trip to the executor (`environment/status`), in ms. Rejects
   * when the connection is closed.
   */
  ping(): Promise<number>;
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
 * Connects to an executor and initializes a session. `target` is the
 * executor's `ws://`/`wss://` URL, or a program to start that speaks the
 * protocol on its stdio: `{ program: "ssh", args: ["devbox", "deno", "run",
 * "-A", "/path/mod.ts", "serve", "--listen", "stdio"] }` (closing the
 * connection ends its stdin: the executor stops and kills its processes).
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
  target: ExecutorTarget,
  options: ConnectExecutorOptions = {},
): Promise<ExecutorClient> {
  let dial: Dial | null = null;
  let channel = options.channel;
  if (channel === undefined && isProgramTarget(target)) {
    // The program holds the session: when it is gone, so is the session (no reconnect).
    channel = programChannel(target);
  } else if (channel === undefined) {
    const url = target as string | URL;
    const token = await resolveClientToken(options);
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.Authorization = `Bearer ${token}`;
    const caCerts = await resolveCaCerts(options);
    const u = new URL(url);
    dial = async (timeoutMs, signal) => {
      const socket = await connectWebSocket(url, {
        headers,
        // The largest response: fs/readFile of 512 MiB in base64, plus its envelope.
        maxMessageBytes: 700 * 1024 * 1024,
        caCerts,
        connectTimeoutMs: timeoutMs,
        signal,
        pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      });
      return clientWebSocketChannel(socket, `${u.protocol}//${u.host}`);
    };
    channel = await dial(options.connectTimeoutMs ?? 10_000);
  }
  const connection = new ExecutorConnection(channel, {
    ...options,
    dial: options.reconnect === false ? null : dial,
  });
  try {
    await connection.initialize(options);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

/** Opens a new channel to the executor (for a reconnect). */
type Dial = (timeoutMs: number, signal?: AbortSignal) => Promise<TextChannel>;

class ExecutorConnection implements ExecutorClient {
  readonly fs: ExecFileSystem;
  readonly done: Promise<string>;
  readonly #options: ConnectExecutorOptions & { dial: Dial | null };
  #state: ConnectionState = "connected";
  /** Aborted by close(): stops a reconnect in progress. */
  readonly #closing = new AbortController();
  #sessionId = "";
  #environmentInfo: EnvironmentInfo | null = null;
  /** Paths go as `file://` URIs: the executor speaks the current protocol (it sent environmentInfo). */
  #uris = false;
  #http: RemoteHttp | null = null;
  #writeNotifications = false;
  #binaryWrites = false;
  /** The executor answers repeated calls once: reconnecting is possible. */
  #resumable = false;
  /** Reconnects so far. */
  #epoch = 0;
  /** The name of this connection's request numbering, for the executor's call log. */
  readonly #callSpace = crypto.randomUUID();
  /** Processes whose `process/start` is not answered yet. */
  readonly #starting = new Set<RemoteProcess>();
  readonly #binaryChannel: boolean;
  readonly #rpc: RpcClient;
  readonly #routes = new Map<string, RemoteProcess>();

  constructor(channel: TextChannel, options: ConnectExecutorOptions & { dial: Dial | null }) {
    this.#options = options;
    this.#binaryChannel = channel.binary;
    let resolveDone: (message: string) => void = () => {};
    this.done = new Promise((resolve) => resolveDone = resolve);
    this.#rpc = new RpcClient(channel, {
      onLost: (reason) => this.#onLost(reason),
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
        this.#setState({ state: "closed", reason: message });
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

  get state(): ConnectionState {
    return this.#state;
  }

  async ping(): Promise<number> {
    const began = performance.now();
    try {
      await this.#rpc.call(Method.environmentStatus, {});
    } catch (error) {
      // An executor without the method still answered: the round trip is what counts.
      if (!(error instanceof RpcError)) throw error;
    }
    return performance.now() - began;
  }

  async initialize(options: ConnectExecutorOptions): Promise<void> {
    const timeoutMs = options.initializeTimeoutMs ?? 10_000;
    const message = `timed out waiting for exec-server initialize handshake after ${timeoutMs} ms`;
    const raw = await withTimeout(
      this.#rpc.call(Method.initialize, this.#initializeParams(options.resumeSessionId ?? null)),
      timeoutMs,
      {
        error: () => new Error(message),
        onTimeout: () => this.#rpc.disconnect(message),
      },
    );
    const result = schemas.results.initialize.parse(raw);
    // Reconnecting needs calls answered once: without it, fail at the first loss.
    this.#resumable = this.#options.dial !== null && result.resumableCalls === true;
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
    const checked = parseParams(schemas.startParams, params, { method: Method.processStart });
    const id = checked.processId;
    if (this.#routes.has(id)) {
      // The executor would refuse it too; refusing here keeps one route per id.
      throw new RpcError(INVALID_REQUEST, `process ${id} already exists`);
    }
    // Register before starting so that early notifications are captured.
    const process = this.#addRoute(checked);
    this.#starting.add(process);
    const epoch = this.#epoch;
    try {
      // The current protocol wants paths as URIs, April's native ones (execbridge takes both).
      const cwd = checked.cwd == null || !this.#uris ? checked.cwd : toFileUri(checked.cwd);
      const raw = await this.#rpc.call(Method.processStart, { ...checked, cwd });
      schemas.results.start.parse(raw);
      // Reconnected meanwhile: its first events may have been lost with the old link.
      if (this.#epoch !== epoch) await process.resync({ now: false });
    } catch (error) {
      this.#removeRoute(process);
      throw error;
    } finally {
      this.#starting.delete(process);
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
    this.#closing.abort();
    return this.#rpc.disconnect("closed by the client");
  }

  #initializeParams(resumeSessionId: string | null): InitializeParams {
    const options = this.#options;
    return {
      clientName: options.clientName ?? "execbridge-client",
      resumeSessionId,
      binaryOutput: options.binaryOutput ?? true,
      binaryWrites: options.binaryWrites ?? true,
      ...(this.#options.dial !== null ? { resumableCalls: this.#callSpace } : {}),
    };
  }

  #setState(change: ConnectionStateChange): void {
    if (this.#state === change.state || this.#state === "closed") return;
    this.#state = change.state;
    try {
      this.#options.onStateChange?.(change);
    } catch (error) {
      reportError(error);
    }
  }

  /** The channel ended: reconnect when possible (true), else latch the disconnect (false). */
  #onLost(reason: string): boolean {
    if (!this.#resumable || this.#closing.signal.aborted) return false;
    if (this.#state !== "reconnecting") void this.#reconnect(reason);
    return true;
  }

  /**
   * Reconnects with backoff and jitter until the resume window ends: a new
   * channel, `initialize` with this session's id, the held calls sent again,
   * each process's missed events read. Gives up at once when the executor
   * is gone (connection refused), does not know the session any more, or
   * refuses the token.
   */
  async #reconnect(reason: string): Promise<void> {
    const dial = this.#options.dial!;
    const windowMs = (this.#options.reconnect || {}).windowMs ?? DEFAULT_RESUME_WINDOW_MS;
    const lostAt = performance.now();
    const deadline = lostAt + windowMs;
    const signal = this.#closing.signal;
    this.#setState({ state: "reconnecting", reason });
    // Streamed HTTP bodies came as notifications: what was lost cannot be asked for again.
    this.#http?.fail(`${reason}: the connection to the executor was lost`);
    let attempts = 0;
    let last = reason;
    while (!signal.aborted && this.#rpc.disconnected === null) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) break;
      if (attempts > 0 && !await delay(Math.min(backoffMs(attempts), remaining), { signal })) {
        break;
      }
      attempts++;
      let channel: TextChannel | null = null;
      try {
        const left = Math.max(1, deadline - performance.now());
        channel = await dial(Math.min(this.#options.connectTimeoutMs ?? 10_000, left), signal);
        if (signal.aborted) break;
        this.#rpc.replaceChannel(channel);
        const raw = await withTimeout(
          this.#rpc.call(Method.initialize, this.#initializeParams(this.#sessionId), {
            now: true,
          }),
          Math.min(this.#options.initializeTimeoutMs ?? 10_000, left),
          { error: () => new Error("the executor did not answer initialize in time") },
        );
        const result = schemas.results.initialize.parse(raw);
        if (result.sessionId !== this.#sessionId || result.resumableCalls !== true) {
          throw new Fatal("the executor answered the resume with another session");
        }
        this.#rpc.notify(Method.initialized, {}, { now: true });
        this.#rpc.release();
        this.#epoch++;
        // A process still starting catches up once its start is answered.
        const live = [...this.#routes.values()].filter((process) => !this.#starting.has(process));
        await Promise.all(live.map((process) => process.resync({ now: true })));
        this.#setState({
          state: "connected",
          downMs: Math.round(performance.now() - lostAt),
          attempts,
        });
        return;
      } catch (error) {
        if (channel !== null && this.#rpc.holding) void channel.close();
        last = (error as Error).message;
        const fatal = fatalCause(error);
        if (fatal !== null) {
          last = fatal;
          break;
        }
      }
    }
    if (signal.aborted || this.#rpc.disconnected !== null) return;
    const seconds = ((performance.now() - lostAt) / 1000).toFixed(1);
    await this.#rpc.disconnect(
      `${reason}; could not resume the session (${attempts} attempt${
        attempts === 1 ? "" : "s"
      } in ${seconds} s): ${last}`,
    );
  }

  /** A process handle, routed (its events reach it) until it closes. */
  #addRoute(params: StartParams): RemoteProcess {
    const process: RemoteProcess = new RemoteProcess(params, this.#rpc, {
      onClosed: () => this.#removeRoute(process),
      notifyWrites: this.#writeNotifications,
      // Kept until confirmed, and sent again after a reconnect (the writeId makes it once).
      replayWrites: this.#resumable,
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
    const notifications = schemas.notifications;
    const schema = Object.hasOwn(notifications, method)
      ? notifications[method as keyof typeof notifications]
      : undefined;
    const parsed = schema?.safeParse(params);
    if (parsed?.success) this.#routes.get(parsed.data.processId)?.accept(parsed.data.event);
  }
}

/** A reconnect failure that no retry can fix. */
class Fatal extends Error {}

/**
 * Why a reconnect attempt can never succeed, or null when it may: the
 * executor refuses connections (it is gone), refuses the handshake (token),
 * or no longer knows the session (it restarted, or the session expired).
 */
function fatalCause(error: unknown): string | null {
  if (error instanceof Fatal) return error.message;
  if (error instanceof WebSocketHandshakeError) {
    if (error.cause instanceof Deno.errors.ConnectionRefused) {
      return `the executor is gone (connection refused): ${error.message}`;
    }
    if (error.status !== null) return error.message;
    return null;
  }
  if (error instanceof RpcError) {
    if (error.code === SESSION_ATTACHED) return null; // the executor has not noticed the loss yet
    return `the executor no longer has the session (it restarted, or the session expired): ${error.message}`;
  }
  return null;
}

/**
 * The wait before reconnect attempt `n + 1` (`n` ≥ 1 attempts made): 100 ms
 * doubling to 2 s, each ±25% (jitter, so that many clients do not come back
 * in step).
 */
export function backoffMs(n: number): number {
  const base = Math.min(2_000, 100 * 2 ** (n - 1));
  return base * (0.75 + Math.random() * 0.5);
}
