/**
 * {@link ServerSupervisor}: an MCP stdio server that is started again when it
 * exits unexpectedly, behind one transport that outlives each process, so
 * that the MCP client on the other side keeps its session.
 *
 * The supervisor sits between the client and the server and reads every
 * message: it remembers the client's `initialize` request and
 * `notifications/initialized`, the requests in flight either way, and the
 * last tool list the client was given. When the server exits without being
 * asked to, the requests in flight get a JSON-RPC error naming the exit (they
 * are not retried: they may have had effects), and after a backoff a new
 * server is started; the supervisor replays the handshake to it (its own
 * `initialize`, with an id of its own and the client's params, whose answer
 * it consumes; then `notifications/initialized`), tells the client
 * `notifications/tools/list_changed` when the new server's tools differ, and
 * delivers what the client sent meanwhile. A client of the stateless
 * 2026-07-28 protocol sends no `initialize`: nothing is replayed then.
 * Too many restarts within a window end it ({@link ServerSupervisorEnd}).
 *
 * One class serves `bridge` (messages from stdin, answers to stdout) and
 * `McpConnectionManager` (the SDK `Client` connects to it as to any
 * transport).
 *
 * Long (~790 lines) on purpose: one state machine around one server process
 * (messages in flight both ways, the handshake to replay, the restart loop,
 * the executor's renewal), driven by the same events and sharing their state.
 *
 * @module
 */

// Deferred: the SDK's types module is evaluated when a restarted server's tools are checked,
// not when the library's entry point loads, which `serve` does (docs/performance.md).
// @ts-types="@modelcontextprotocol/sdk/types"
import defer * as sdkTypes from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../log/logger.ts";
import { delay, withTimeout } from "../util/deadline.ts";
import { DEFAULT_STARTUP_TIMEOUT_MS } from "./config_types.ts";
import type { JsonRpcMessage, McpServerExit, McpServerTool, McpTransport } from "./types.ts";

/** When and how often a server that exits unexpectedly is started again. */
export interface RespawnPolicy {
  /** Most restarts within {@link windowMs}; the next exit gives up. */
  maxRestarts: number;
  /** The sliding window restarts are counted in, in ms. */
  windowMs: number;
  /** Wait before the first restart of a window, in ms; doubled for each further one. */
  initialBackoffMs: number;
  /** The longest wait before a restart, in ms. */
  maxBackoffMs: number;
}

/**
 * The defaults of `bridge` and of config files: up to 5 restarts within
 * 60 s, after waits of 100, 200, 400, 800, 1600 ms (doubling, at most 5 s).
 */
export const DEFAULT_RESPAWN_POLICY: Readonly<RespawnPolicy> = Object.freeze({
  maxRestarts: 5,
  windowMs: 60_000,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
});

/**
 * A transport to one server process that can say how the process ended
 * (`ExecutorProcessTransport` and the local launcher's transport can).
 */
export interface SupervisedTransport extends McpTransport {
  /** How the server ended, once the transport closed (null or absent when unknown). */
  readonly exit?: McpServerExit | null;
}

/** A server ended without being asked to (exited, or could no longer be reached). */
export interface ServerExitEvent {
  /** What happened: `exited (code 3)`, `exited (signal SIGKILL)`, `could not be started: …`. */
  reason: string;
  /**
   * The restart this starts within the window (`k` of `k of N`); null when
   * giving up, or when the server waits for its executor (`renewing`).
   */
  restart: number | null;
  /** The server was lost with its executor: it starts again once the executor is back (`whenLost`). */
  renewing?: boolean;
  /** The policy's limit (`N`). */
  maxRestarts: number;
  /** Restarts made since the supervisor started (not counting the one this starts). */
  restarts: number;
  /** The whole line logged for it. */
  message: string;
}

/** A new server took over the session. */
export interface ServerRestartedEvent {
  /** Restarts since the supervisor started. */
  restarts: number;
  /** The new server's tools, when the supervisor listed them (the client had listed tools). */
  tools: McpServerTool[] | null;
  /** Whether they differ from the last list the client saw (it was told). */
  toolsChanged: boolean;
}

/** Why a {@link ServerSupervisor} ended. */
export type ServerSupervisorEnd =
  | {
    /** {@link ServerSupervisor.close} was called. */
    kind: "closed";
  }
  | {
    /** The server kept exiting: more than `maxRestarts` within the window. */
    kind: "gaveUp";
    /** What to tell a person: the server, the restarts, the last exit. */
    message: string;
    /** How the last server process ended, when known. */
    exit: McpServerExit | null;
  }
  | {
    /** The server can no longer be observed (the executor connection was lost). */
    kind: "lost";
    /** What happened. */
    message: string;
  };

/** Options of {@link ServerSupervisor}. */
export interface ServerSupervisorOptions {
  /** The server's name in messages and logs. */
  name: string;
  /** Where restarts and give-ups are logged. */
  log: Logger;
  /** Overrides of {@link DEFAULT_RESPAWN_POLICY}. */
  policy?: Partial<RespawnPolicy>;
  /** Limit for starting a new server and for each replayed request (default 30 s). */
  startupTimeoutMs?: number;
  /** Called when the server ended unexpectedly, before it is restarted (or given up on). */
  onServerExit?(event: ServerExitEvent): void;
  /** Called once a new server took over, before held messages are delivered to it. */
  onServerRestarted?(event: ServerRestartedEvent): void;
  /**
   * The server was lost with its executor connection (the executor is gone,
   * or restarted without the session): resolve once a new connection is up
   * (the next `launch` uses it), reject to give up. The requests in flight
   * get an error at once; what the client sends meanwhile waits. The new
   * server gets the handshake replayed and does not count as a restart
   * against the policy. Without it, a lost server ends the supervisor.
   */
  whenLost?(failure: string): Promise<void>;
}

/** The JSON-RPC error code of a request that was in flight when its server exited. */
export const SERVER_EXITED_ERROR_CODE: number = -32000;

type RequestId = string | number;
type State = "idle" | "running" | "restarting" | "closed";

/** A restart attempt that did not work out; `reason` reads after "MCP server NAME". */
class RestartFailure extends Error {
  constructor(readonly reason: string, readonly exit: McpServerExit | null = null) {
    super(reason);
  }
}

/**
 * An {@link McpTransport} to an MCP stdio server that is restarted when it
 * exits unexpectedly, keeping the client's session (see the module doc).
 *
 * @example
 * ```ts
 * import { Client } from "@modelcontextprotocol/sdk/client";
 * import {
 *   createLogger,
 *   LocalStdioServerLauncher,
 *   ServerSupervisor,
 * } from "@execbridge/execbridge";
 *
 * const launcher = new LocalStdioServerLauncher();
 * const transport = await ServerSupervisor.launch(
 *   () => launcher.launch({ command: "node", args: ["server.js"] }),
 *   { name: "server", log: createLogger({ name: "mcp" }), policy: { maxRestarts: 3 } },
 * );
 * const client = new Client({ name: "agent", version: "1.0.0" });
 * await client.connect(transport);
 * ```
 */
export class ServerSupervisor implements McpTransport {
  /** Called once when the supervisor ended: closed, given up, or the server was lost. */
  onclose?: () => void;
  /** Called on errors of the server's transports (not necessarily fatal; not for a lost one). */
  onerror?: (error: Error) => void;
  /** Called for each message for the client: the server's, and the supervisor's own errors. */
  onmessage?: (message: JsonRpcMessage) => void;

  readonly #launch: () => Promise<SupervisedTransport>;
  readonly #name: string;
  readonly #log: Logger;
  readonly #policy: RespawnPolicy;
  readonly #startupTimeoutMs: number;
  readonly #options: ServerSupervisorOptions;
  #inner: SupervisedTransport | null;
  #state: State = "idle";
  #stopping = false;
  readonly #abort = new AbortController();
  #restarting: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  readonly #ended = Promise.withResolvers<ServerSupervisorEnd>();
  #end: ServerSupervisorEnd | null = null;

  /** The client's requests sent to the current server and not answered yet: id → method. */
  readonly #inFlight = new Map<RequestId, string>();
  /** The current server's requests to the client not answered yet. */
  readonly #serverRequests = new Set<RequestId>();
  /** What the client sent while the server was restarting. */
  #held: JsonRpcMessage[] = [];
  /** The supervisor's own requests to a new server. */
  readonly #own = new Map<RequestId, PromiseWithResolvers<JsonRpcMessage>>();
  #nextOwnId = 1;

  /** The client's `initialize` request, once a server answered it. */
  #initialize: JsonRpcMessage | null = null;
  #pendingInitialize: JsonRpcMessage | null = null;
  #initializedSent = false;
  #protocolVersion: unknown = undefined;

  /** `tools/list` requests in flight: id → whether it asked for the first page. */
  readonly #toolsRequests = new Map<RequestId, boolean>();
  #toolsPages: unknown[] = [];
  /** The last complete tool list the client was given. */
  #clientTools: unknown[] | null = null;

  readonly #restartTimes: number[] = [];
  #restarts = 0;
  #lastExit: string | null = null;
  #lastExitStatus: McpServerExit | null = null;

  /**
   * Wraps a first server transport (not started yet); `launch` starts each
   * further one. See {@link ServerSupervisor.launch}.
   */
  constructor(
    first: SupervisedTransport,
    launch: () => Promise<SupervisedTransport>,
    options: ServerSupervisorOptions,
  ) {
    this.#launch = launch;
    this.#options = options;
    this.#name = options.name;
    this.#log = options.log;
    this.#policy = { ...DEFAULT_RESPAWN_POLICY, ...options.policy };
    this.#startupTimeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
    this.#inner = first;
    this.#wire(first);
  }

  /** Launches the first server (a failure rejects: nothing is restarted) and wraps it. */
  static async launch(
    launch: () => Promise<SupervisedTransport>,
    options: ServerSupervisorOptions,
  ): Promise<ServerSupervisor> {
    return new ServerSupervisor(await launch(), launch, options);
  }

  /** Restarts so far (a new server launched after an exit counts, whether or not it worked). */
  get restarts(): number {
    return this.#restarts;
  }

  /** The last unexpected end (`exited (code 3)`, …), if any. */
  get lastExit(): string | null {
    return this.#lastExit;
  }

  /** Settles once the supervisor ended, saying why. */
  get ended(): Promise<ServerSupervisorEnd> {
    return this.#ended.promise;
  }

  /** Why it ended, once it did (set before `onclose` is called); null while it runs. */
  get end(): ServerSupervisorEnd | null {
    return this.#end;
  }

  /** Starts the first server's transport. */
  async start(): Promise<void> {
    if (this.#state !== "idle") throw new Error("the transport was already started");
    this.#state = "running";
    await this.#inner!.start();
  }

  /**
   * Sends one message of the client: to the server now, or, while it
   * restarts, once a new one took over (resolving at once).
   */
  async send(message: JsonRpcMessage): Promise<void> {
    if (this.#state === "closed" || this.#stopping) {
      throw new Error(`MCP server ${this.#name} is closed`);
    }
    this.#noteFromClient(message);
    const inner = this.#inner;
    if (isResponse(message)) {
      // The current server's requests go to it at once, even while a new one is being set up.
      if (this.#serverRequests.delete(message.id!) && inner !== null) {
        await this.#deliver(inner, message);
      } else {
        // It answers a request of a server that has exited since: the new one did not ask.
        this.#log.debug(`dropped a response to a request of an earlier ${this.#name} process`);
      }
      return;
    }
    if (this.#state !== "running" || inner === null) {
      this.#held.push(message);
      return;
    }
    await this.#deliver(inner, message);
  }

  /** Stops the current server (EOF, SIGTERM, SIGKILL) and any restart; `onclose` runs. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping = true;
      this.#abort.abort();
      const inner = this.#inner;
      this.#inner = null;
      this.#rejectOwn(new Error(`MCP server ${this.#name} is closing`));
      await inner?.close().catch(() => {});
      await this.#restarting;
      this.#finish({ kind: "closed" });
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------
  // messages

  #noteFromClient(message: JsonRpcMessage): void {
    if (isRequest(message)) {
      if (message.method === "initialize") this.#pendingInitialize = message;
      if (message.method === "tools/list") {
        const cursor = (message.params as { cursor?: unknown } | undefined)?.cursor;
        this.#toolsRequests.set(message.id!, cursor === undefined);
      }
    } else if (message.method === "notifications/initialized") {
      this.#initializedSent = true;
    }
  }

  async #deliver(inner: SupervisedTransport, message: JsonRpcMessage): Promise<void> {
    if (isRequest(message)) this.#inFlight.set(message.id!, message.method!);
    try {
      await inner.send(message);
    } catch (error) {
      // The server is going away; its transport closing answers what was in flight.
      this.#log.debug(`could not write to MCP server ${this.#name}: ${errorText(error)}`);
    }
  }

  #wire(inner: SupervisedTransport): void {
    inner.onmessage = (message) => {
      if (inner === this.#inner) this.#fromServer(message);
    };
    inner.onerror = (error) => {
      // A lost server is reported once, as the end (`lost`).
      if (inner.exit?.failure === undefined) this.onerror?.(error);
    };
    inner.onclose = () => this.#innerClosed(inner);
  }

  #fromServer(message: JsonRpcMessage): void {
    if (isResponse(message)) {
      const id = message.id!;
      const own = this.#own.get(id);
      if (own !== undefined) {
        this.#own.delete(id);
        own.resolve(message);
        return;
      }
      const method = this.#inFlight.get(id);
      this.#inFlight.delete(id);
      if (method === "initialize" && message.result !== undefined) {
        if (this.#pendingInitialize?.id === id) this.#initialize = this.#pendingInitialize;
        this.#protocolVersion = (message.result as { protocolVersion?: unknown }).protocolVersion;
      } else if (method === "tools/list") {
        this.#noteTools(id, message);
      }
    } else if (isRequest(message)) {
      this.#serverRequests.add(message.id!);
    }
    this.onmessage?.(message);
  }

  #noteTools(id: RequestId, response: JsonRpcMessage): void {
    const first = this.#toolsRequests.get(id);
    this.#toolsRequests.delete(id);
    const result = response.result as { tools?: unknown; nextCursor?: unknown } | undefined;
    if (first === undefined || !Array.isArray(result?.tools)) return;
    if (first) this.#toolsPages = [];
    this.#toolsPages.push(...result.tools);
    if (result.nextCursor === undefined) this.#clientTools = this.#toolsPages;
  }

  #toClient(message: JsonRpcMessage): void {
    if (this.#state !== "closed") this.onmessage?.(message);
  }

  /** Answers every request in flight with an error, and withdraws the server's own requests. */
  #failInFlight(text: string, reason: string): void {
    for (const id of this.#inFlight.keys()) {
      this.#toolsRequests.delete(id);
      this.#toClient({
        jsonrpc: "2.0",
        id,
        error: {
          code: SERVER_EXITED_ERROR_CODE,
          message: text,
          data: { server: this.#name, reason },
        },
      });
    }
    this.#inFlight.clear();
    for (const requestId of this.#serverRequests) {
      this.#toClient({
        jsonrpc: "2.0",
        method: "notifications/cancelled",
        params: { requestId, reason: `MCP server ${this.#name} ${reason}` },
      });
    }
    this.#serverRequests.clear();
  }

  /** Answers the held requests with an error and drops the rest. */
  #failHeld(text: string): void {
    const held = this.#held;
    this.#held = [];
    for (const message of held) {
      if (!isRequest(message)) continue;
      this.#toolsRequests.delete(message.id!);
      this.#toClient({
        jsonrpc: "2.0",
        id: message.id,
        error: { code: SERVER_EXITED_ERROR_CODE, message: text, data: { server: this.#name } },
      });
    }
  }

  #rejectOwn(error: Error): void {
    for (const pending of this.#own.values()) pending.reject(error);
    this.#own.clear();
  }

  // -------------------------------------------------------------------------
  // exits and restarts

  #innerClosed(inner: SupervisedTransport): void {
    if (inner !== this.#inner) return; // replaced, or closed on purpose
    this.#inner = null;
    if (this.#stopping || this.#state === "closed") return;
    const exit = inner.exit ?? null;
    this.#lastExitStatus = exit;
    if (exit?.failure !== undefined) {
      const message = `MCP server ${this.#name} can no longer be reached: ${exit.failure}`;
      const renew = this.#options.whenLost;
      this.#rejectOwn(new RestartFailure(`can no longer be reached: ${exit.failure}`, exit));
      this.#failInFlight(
        renew === undefined ? message : `${message}; it will be started again once the ` +
          "executor is reachable",
        "lost",
      );
      this.#lastExit = `can no longer be reached: ${exit.failure}`;
      this.#options.onServerExit?.({
        reason: this.#lastExit,
        restart: null,
        ...(renew !== undefined ? { renewing: true } : {}),
        maxRestarts: this.#policy.maxRestarts,
        restarts: this.#restarts,
        message,
      });
      if (renew !== undefined) {
        // A restart in progress fails on its own, and its next launch waits for the executor.
        if (this.#state === "running") {
          this.#state = "restarting";
          this.#restarting = this.#recoverLost(renew, exit.failure);
        }
        return;
      }
      this.#failHeld(message);
      this.#finish({ kind: "lost", message });
      return;
    }
    const reason = `exited (${describeExit(exit)})`;
    this.#rejectOwn(new RestartFailure(reason, exit));
    if (this.#state !== "running") {
      // A restart attempt is in progress: it fails and takes the next restart.
      this.#lastExit = reason;
      return;
    }
    this.#state = "restarting";
    const restart = this.#failed(reason, exit);
    if (restart !== null) this.#restarting = this.#restartLoop(restart);
  }

  /**
   * Counts a failure against the window: errors the requests in flight, logs,
   * and returns the restart to make, or gives up and returns null.
   */
  #failed(reason: string, exit: McpServerExit | null): number | null {
    this.#lastExit = reason;
    this.#lastExitStatus = exit;
    const { maxRestarts, windowMs } = this.#policy;
    const now = performance.now();
    while (this.#restartTimes.length > 0 && now - this.#restartTimes[0] >= windowMs) {
      this.#restartTimes.shift();
    }
    const name = this.#name;
    if (this.#restartTimes.length >= maxRestarts) {
      const window = `${this.#restartTimes.length} restart${
        this.#restartTimes.length === 1 ? "" : "s"
      } within ${formatSeconds(windowMs)}`;
      const message = `MCP server ${name} ${reason} after ${window}; giving up ` +
        "(its stderr, logged before this, should say why it exits)";
      this.#failInFlight(
        `MCP server ${name} ${reason} while this request was in flight; not restarting it ` +
          `(${window})`,
        reason,
      );
      this.#failHeld(`MCP server ${name} ${reason} after ${window}; not restarting it`);
      this.#log.error(message);
      this.#options.onServerExit?.({
        reason,
        restart: null,
        maxRestarts,
        restarts: this.#restarts,
        message,
      });
      this.#finish({ kind: "gaveUp", message, exit });
      return null;
    }
    this.#restartTimes.push(now);
    const restart = this.#restartTimes.length;
    const message = `MCP server ${name} ${reason}, restarting (${restart} of ${maxRestarts})`;
    this.#failInFlight(
      `MCP server ${name} ${reason} while this request was in flight; ` +
        `restarting (${restart} of ${maxRestarts})`,
      reason,
    );
    this.#log.warn(message);
    this.#options.onServerExit?.({
      reason,
      restart,
      maxRestarts,
      restarts: this.#restarts,
      message,
    });
    return restart;
  }

  async #restartLoop(first: number): Promise<void> {
    let restart = first;
    while (true) {
      const { initialBackoffMs, maxBackoffMs } = this.#policy;
      const wait = Math.min(initialBackoffMs * 2 ** (restart - 1), maxBackoffMs);
      this.#log.debug(`starting MCP server ${this.#name} again in ${wait} ms`);
      if (!await delay(wait, { signal: this.#abort.signal })) return;
      this.#restarts++;
      try {
        await this.#attempt(restart);
        return;
      } catch (error) {
        if (this.#stopping) return;
        const failure = error instanceof RestartFailure
          ? error
          : new RestartFailure(`failed to restart: ${errorText(error)}`);
        const next = this.#failed(failure.reason, failure.exit);
        if (next === null) return;
        restart = next;
      }
    }
  }

  /** Waits for a new executor connection, then starts the server on it (not counted as a restart). */
  async #recoverLost(renew: (failure: string) => Promise<void>, failure: string): Promise<void> {
    try {
      await renew(failure);
    } catch (error) {
      if (this.#stopping) return;
      const message = `MCP server ${this.#name} can no longer be reached: ${errorText(error)}`;
      this.#log.error(message);
      this.#failHeld(message);
      this.#finish({ kind: "lost", message });
      return;
    }
    if (this.#stopping) return;
    this.#restarts++;
    try {
      await this.#attempt(null);
    } catch (error) {
      if (this.#stopping) return;
      const failed = error instanceof RestartFailure
        ? error
        : new RestartFailure(`failed to restart: ${errorText(error)}`);
      const next = this.#failed(failed.reason, failed.exit);
      if (next !== null) await this.#restartLoop(next);
    }
  }

  /**
   * Starts a new server, replays the handshake, compares tools, delivers what
   * was held. `restart`: its number within the window, or null for a new
   * executor session (not counted).
   */
  async #attempt(restart: number | null): Promise<void> {
    const timeout = this.#startupTimeoutMs;
    const launching = this.#launch();
    let inner: SupervisedTransport;
    try {
      inner = await withTimeout(launching, timeout, {
        error: () => new RestartFailure(`did not start within ${timeout} ms`),
      });
    } catch (error) {
      // One that starts after the timeout must not keep running.
      launching.then((late) => late.close(), () => {});
      if (error instanceof RestartFailure) throw error;
      throw new RestartFailure(`could not be started: ${errorText(error)}`);
    }
    if (this.#stopping) {
      await inner.close().catch(() => {});
      return;
    }
    this.#inner = inner;
    this.#wire(inner);
    try {
      await inner.start();
      const toolsChanged = await this.#replay(inner);
      this.#check(inner);
      if (toolsChanged.changed) {
        this.#log.info(`MCP server ${this.#name} has other tools now; telling the client`);
        this.#toClient({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
      }
      this.#log.info(
        `MCP server ${this.#name} is running again (${
          restart === null
            ? "in a new executor session"
            : `restart ${restart} of ${this.#policy.maxRestarts}`
        }); ${
          this.#initialize === null
            ? "no handshake to replay"
            : "replayed the client's initialize handshake"
        }`,
      );
      this.#options.onServerRestarted?.({
        restarts: this.#restarts,
        tools: toolsChanged.tools,
        toolsChanged: toolsChanged.changed,
      });
      // In order, including what arrives meanwhile; then new messages go straight through.
      while (this.#held.length > 0) {
        this.#check(inner);
        await this.#deliver(inner, this.#held.shift()!);
      }
      this.#check(inner);
      this.#state = "running";
    } catch (error) {
      if (this.#inner === inner) {
        this.#inner = null;
        await inner.close().catch(() => {});
      } else if (!(error instanceof RestartFailure)) {
        // It exited (a write to it failed first): say how.
        throw new RestartFailure(this.#lastExit ?? "exited", this.#lastExitStatus);
      }
      throw error;
    }
  }

  /** Throws when `inner` is no longer the current server (it exited, or we are closing). */
  #check(inner: SupervisedTransport): void {
    if (this.#inner === inner) return;
    throw new RestartFailure(this.#lastExit ?? "exited", this.#lastExitStatus);
  }

  /** Replays the handshake to a new server; lists its tools when the client had listed them. */
  async #replay(
    inner: SupervisedTransport,
  ): Promise<{ tools: McpServerTool[] | null; changed: boolean }> {
    const initialize = this.#initialize;
    if (initialize === null) return { tools: null, changed: false };
    const answer = await this.#request(inner, "initialize", initialize.params);
    if (answer.error !== undefined) {
      throw new RestartFailure(`refused the replayed initialize: ${answer.error.message}`);
    }
    const version = (answer.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    if (version !== this.#protocolVersion) {
      this.#log.warn(
        `MCP server ${this.#name} answered the replayed initialize with protocol version ` +
          `${JSON.stringify(version)} instead of ${JSON.stringify(this.#protocolVersion)}`,
      );
    }
    if (this.#initializedSent) {
      await inner.send({ jsonrpc: "2.0", method: "notifications/initialized" });
    }
    const seen = this.#clientTools;
    if (seen === null) return { tools: null, changed: false };
    let raw: unknown[];
    try {
      raw = await this.#listTools(inner);
    } catch (error) {
      if (error instanceof RestartFailure && this.#inner !== inner) throw error;
      this.#log.warn(`could not list the tools of the new ${this.#name}: ${errorText(error)}`);
      return { tools: null, changed: false };
    }
    const changed = canonicalJson(sortByName(raw)) !== canonicalJson(sortByName(seen));
    const parsed = sdkTypes.ListToolsResultSchema.safeParse({ tools: raw });
    return { tools: parsed.success ? parsed.data.tools : null, changed };
  }

  async #listTools(inner: SupervisedTransport): Promise<unknown[]> {
    const tools: unknown[] = [];
    let cursor: unknown = undefined;
    do {
      const answer = await this.#request(
        inner,
        "tools/list",
        cursor === undefined ? {} : { cursor },
      );
      if (answer.error !== undefined) throw new Error(answer.error.message);
      const page = answer.result as { tools?: unknown; nextCursor?: unknown } | undefined;
      if (!Array.isArray(page?.tools)) throw new Error("its tools/list result has no tools");
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return tools;
  }

  /** Sends a request of the supervisor's own (its id tells the answer apart) and waits for it. */
  async #request(
    inner: SupervisedTransport,
    method: string,
    params: unknown,
  ): Promise<JsonRpcMessage> {
    const id = `execbridge-respawn-${this.#nextOwnId++}`;
    const pending = Promise.withResolvers<JsonRpcMessage>();
    this.#own.set(id, pending);
    inner.send({ jsonrpc: "2.0", id, method, params }).catch((error) => {
      if (this.#own.delete(id)) pending.reject(error);
    });
    const timeout = this.#startupTimeoutMs;
    try {
      return await withTimeout(pending.promise, timeout, {
        error: () => new RestartFailure(`did not answer ${method} within ${timeout} ms`),
      });
    } finally {
      this.#own.delete(id);
    }
  }

  #finish(end: ServerSupervisorEnd): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#abort.abort();
    this.#end = end;
    this.#ended.resolve(end);
    this.onclose?.();
  }
}

/** `code 3`, `signal SIGKILL`, or `unknown status` when the exit was not seen. */
export function describeExit(exit: McpServerExit | null): string {
  if (exit?.signal) return `signal ${exit.signal}`;
  if (exit !== null && exit.exitCode !== null) return `code ${exit.exitCode}`;
  return "unknown status";
}

function isRequest(message: JsonRpcMessage): boolean {
  return message.method !== undefined && message.id !== undefined;
}

function isResponse(message: JsonRpcMessage): boolean {
  return message.method === undefined && message.id !== undefined && message.id !== null;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function sortByName(tools: unknown[]): unknown[] {
  const name = (tool: unknown) => String((tool as { name?: unknown } | null)?.name ?? "");
  return [...tools].sort((a, b) => name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0);
}

/** JSON with object keys sorted, so that equal values give equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, item) =>
      item !== null && typeof item === "object" && !Array.isArray(item)
        ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
        : item,
  );
}
