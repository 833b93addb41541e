/**
 * One client connection on the executor: parses each JSON-RPC message,
 * enforces the initialize → initialized handshake, and runs requests
 * **concurrently** (a long-polling read never holds up a write); responses
 * go out as each finishes, matched by id.
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";
import {
  INTERNAL_ERROR,
  INVALID_REQUEST,
  METHOD_NOT_FOUND,
  PARSE_ERROR,
  RpcError,
} from "../protocol/errors.ts";
import { decodeOutputFrame, outputFrameToJson } from "../protocol/binary_output.ts";
import {
  decodeWriteFrame,
  WRITE_FRAME_KIND,
  writeFrameRequestId,
} from "../protocol/binary_write.ts";
import { initializeParams, parseParams } from "../protocol/schemas.ts";
import type { InitializeResult } from "../protocol/types.ts";
import type { TextChannel } from "../transport/channel.ts";
import { fsMethods } from "./fs_methods.ts";
import { type MethodHandler, RawJson } from "./methods.ts";
import { MAX_NOTIFIED_BACKLOG, processMethods, writeBytes } from "./process_methods.ts";
import type { Session, SessionRegistry, SessionSink } from "./session_registry.ts";

/** Binary frames that are not write frames are JSON text (bad UTF-8 becomes U+FFFD, then a parse error). */
const binaryText = new TextDecoder();

/** Options of {@link ServerConnection}. */
export interface ServerConnectionOptions {
  /** The executor's sessions. */
  registry: SessionRegistry;
  /** Logs (stderr). */
  log: Logger;
  /** Most requests in flight at once (default 1024). */
  maxPendingRequests?: number;
  /** Outbound bytes the connection may queue before its processes are paused (default 64 MiB). */
  maxBufferedBytes?: number;
  /** Close a connection whose queue made no progress for this long (default 60 s). */
  stallTimeoutMs?: number;
  /** Called once when the connection ended. */
  onClose?: () => void;
}

type Id = number | string | null;

/** The executor's side of one connection. */
export class ServerConnection implements SessionSink {
  readonly #channel: TextChannel;
  readonly #options: ServerConnectionOptions;
  #session: Session | null = null;
  #initializing = false;
  #initialized = false;
  #closed = false;
  #inFlight = 0;
  #binaryOutput = false;
  #binaryWrites = false;
  #throttle: ReturnType<typeof setInterval> | null = null;

  /** Serves a channel until it closes. */
  constructor(channel: TextChannel, options: ServerConnectionOptions) {
    this.#channel = channel;
    this.#options = options;
    channel.onmessage = (text) => this.#onMessage(text);
    channel.onbinary = (bytes) => this.#onBinary(bytes);
    channel.onclose = (reason) => this.#onClose(reason);
  }

  /**
   * Sends a pre-serialized notification (the session's sink). A binary
   * output frame goes out as is to a client that opted in, as JSON otherwise.
   */
  send(message: string | Uint8Array): void {
    if (this.#closed) return;
    if (typeof message === "string") {
      this.#channel.send(message);
    } else if (this.#binaryOutput) {
      this.#channel.sendBinary(message);
    } else {
      const frame = decodeOutputFrame(message);
      if (frame !== null) this.#channel.send(outputFrameToJson(frame));
    }
    if (this.#throttle === null && this.#channel.bufferedAmount > this.#highWater) this.#pause();
  }

  get #highWater(): number {
    return (this.#options.maxBufferedBytes ?? 64 * 1024 * 1024) / 2;
  }

  /**
   * The peer reads slower than the processes write: stop reading their
   * output (their pipes fill and they block) until the queue drained; close
   * the connection if it makes no progress for the stall timeout.
   */
  #pause(): void {
    this.#session?.processes.pauseAll();
    const low = this.#highWater / 2;
    const stallMs = this.#options.stallTimeoutMs ?? 60_000;
    let lowest = this.#channel.bufferedAmount;
    let progressAt = performance.now();
    this.#options.log.debug(`${this.#channel.peer} reads slowly: pausing process output`);
    this.#throttle = setInterval(() => {
      const buffered = this.#channel.bufferedAmount;
      if (buffered <= low || this.#closed) {
        this.#unpause();
      } else if (buffered < lowest) {
        lowest = buffered;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > stallMs) {
        this.#options.log.warn(
          `${this.#channel.peer} read nothing for ${stallMs} ms with ${buffered} bytes queued: closing it`,
        );
        this.#unpause();
        this.#channel.close(1008, "the client stopped reading (--max-buffered-bytes)");
      }
    }, 10);
  }

  #unpause(): void {
    if (this.#throttle === null) return;
    clearInterval(this.#throttle);
    this.#throttle = null;
    this.#session?.processes.resumeAll();
  }

  /** Closes the connection. */
  close(code?: number, reason?: string): Promise<void> {
    return this.#channel.close(code, reason);
  }

  #onMessage(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      this.#sendError(
        null,
        PARSE_ERROR,
        `failed to parse JSON-RPC message from ${this.#channel.peer}: ${(error as Error).message}`,
      );
      return;
    }
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      this.#sendError(
        null,
        INVALID_REQUEST,
        Array.isArray(message)
          ? "batch requests are not supported: send one JSON-RPC message per frame"
          : "a JSON-RPC message must be an object",
      );
      return;
    }
    const { id, method, params } = message as { id?: unknown; method?: unknown; params?: unknown };
    // `"id": null` is a (discouraged) request that still gets a response with id null.
    const validId = (typeof id === "number" && Number.isFinite(id)) || typeof id === "string" ||
      ("id" in message && id === null);
    if (id !== undefined && !validId) {
      this.#sendError(null, INVALID_REQUEST, "id must be a number or a string");
      return;
    }
    if (typeof method !== "string") {
      if (validId && !("result" in message) && !("error" in message)) {
        this.#sendError(id as Id, INVALID_REQUEST, "method must be a string");
      }
      // Otherwise a response: the executor never calls the client, so there is nothing to match.
      return;
    }
    if (!validId) {
      this.#onNotification(method, params);
      return;
    }
    this.#dispatch(id as Id, method, params);
  }

  /**
   * A binary frame: a `process/write` frame from a client that offered them,
   * else (as before that extension) UTF-8 JSON text.
   */
  #onBinary(bytes: Uint8Array): void {
    if (!this.#binaryWrites || bytes[0] !== WRITE_FRAME_KIND) {
      this.#onMessage(binaryText.decode(bytes));
      return;
    }
    const frame = decodeWriteFrame(bytes);
    if (frame === null) {
      this.#sendError(
        writeFrameRequestId(bytes),
        INVALID_REQUEST,
        "malformed binary process/write frame",
      );
      return;
    }
    const { processId, data, closeStdin } = frame;
    if (frame.requestId !== null) {
      const write = (session: Session) => writeBytes(session, { processId, data, closeStdin });
      this.#dispatch(frame.requestId, "process/write", undefined, write);
      return;
    }
    this.#notifiedWrite(processId, undefined, { data, closeStdin });
  }

  /**
   * A `process/write` sent as a notification (JSON `params`, or the decoded
   * `bytes` of a binary frame): carried out with no status answered (an
   * execbridge extension).
   * Ignored before the handshake. Notified writes cannot be slowed by their
   * answers, so a process whose stdin backlog piles up past
   * {@link MAX_NOTIFIED_BACKLOG} gets the connection closed.
   */
  #notifiedWrite(
    processId: unknown,
    params: unknown,
    bytes?: { data: Uint8Array; closeStdin: boolean },
  ): void {
    const session = this.#session;
    if (session === null || !this.#initialized) return;
    const host = typeof processId === "string" ? session.processes.lookup(processId) : undefined;
    if (typeof host === "object" && host.stdinBacklog > MAX_NOTIFIED_BACKLOG) {
      this.#options.log.warn(`${this.#channel.peer} floods stdin of ${processId}: closing it`);
      this.#channel.close(1008, "stdin backlog exceeded: send process/write as requests");
      return;
    }
    if (bytes !== undefined && typeof host === "object" && session.sink === this) {
      // The hot path (an MCP message, a keystroke): decoded bytes for a running process go
      // straight to it, as writeBytes would send them; the status has no one to go to.
      host.write(bytes.data, bytes.closeStdin);
      return;
    }
    const run = bytes === undefined
      ? undefined
      : (session: Session) => writeBytes(session, { processId: processId as string, ...bytes });
    this.#handle("process/write", params, run).catch((error) => {
      this.#options.log.debug(`process/write notification failed: ${(error as Error).message}`);
    });
  }

  #onNotification(method: string, params: unknown): void {
    if (method === "process/write" && this.#session !== null && this.#initialized) {
      this.#notifiedWrite((params as { processId?: unknown } | null)?.processId, params);
      return;
    }
    if (method === "initialized") {
      if (this.#session !== null) this.#initialized = true;
      else this.#options.log.warn(`${this.#channel.peer} sent initialized before initialize`);
      return;
    }
    this.#options.log.debug(`ignoring notification ${method} from ${this.#channel.peer}`);
  }

  async #dispatch(
    id: Id,
    method: string,
    params: unknown,
    run?: (session: Session) => Promise<unknown>,
  ): Promise<void> {
    const max = this.#options.maxPendingRequests ?? 1024;
    const maxBuffered = this.#options.maxBufferedBytes ?? 64 * 1024 * 1024;
    if (this.#channel.bufferedAmount > maxBuffered) {
      // The client does not read its responses: answer nothing big until it does.
      this.#sendError(
        id,
        INVALID_REQUEST,
        `the connection's outgoing queue is full (${this.#channel.bufferedAmount} bytes): ` +
          `read the responses first (--max-buffered-bytes)`,
      );
      return;
    }
    if (this.#inFlight >= max) {
      this.#sendError(
        id,
        INVALID_REQUEST,
        `too many requests in flight on this connection: the limit is ${max} (--max-pending-requests)`,
      );
      return;
    }
    this.#inFlight++;
    try {
      const result = await this.#handle(method, params, run);
      if (this.#closed) return;
      const idText = typeof id === "number" ? String(id) : JSON.stringify(id);
      const resultText = result instanceof RawJson ? result.text : JSON.stringify(result ?? {});
      this.#channel.send(`{"jsonrpc":"2.0","id":${idText},"result":${resultText}}`);
      // Responses count against the outgoing queue too (pipelined reads of big output).
      if (this.#throttle === null && this.#channel.bufferedAmount > this.#highWater) this.#pause();
    } catch (error) {
      if (error instanceof RpcError) {
        this.#sendError(id, error.code, error.message, error.data);
      } else {
        this.#options.log.error(`${method} failed: ${(error as Error)?.stack ?? error}`);
        this.#sendError(id, INTERNAL_ERROR, `${method} failed: ${(error as Error)?.message}`);
      }
    } finally {
      this.#inFlight--;
    }
  }

  /** Runs a method (or `run`, with the same checks: a binary write) for this session. */
  async #handle(
    method: string,
    params: unknown,
    run?: (session: Session) => Promise<unknown>,
  ): Promise<unknown> {
    // async: a failed check rejects (a notification's .catch sees it) instead of throwing.
    if (method === "initialize") return this.#initialize(params);
    const handler: MethodHandler | undefined = Object.hasOwn(processMethods, method)
      ? processMethods[method]
      : Object.hasOwn(fsMethods, method)
      ? fsMethods[method]
      : undefined;
    if (handler === undefined) {
      throw new RpcError(METHOD_NOT_FOUND, `unknown method ${JSON.stringify(method)}`);
    }
    const family = method.startsWith("fs/") ? "filesystem" : "exec";
    const session = this.#session;
    if (session === null) {
      throw new RpcError(
        INVALID_REQUEST,
        `client must call initialize before using ${family} methods`,
      );
    }
    if (!this.#initialized) {
      throw new RpcError(
        INVALID_REQUEST,
        `client must send initialized before using ${family} methods`,
      );
    }
    if (session.sink !== this) {
      throw new RpcError(INVALID_REQUEST, "session has been resumed by another connection");
    }
    return await (run !== undefined ? run(session) : handler(params, { session }));
  }

  #initialize(params: unknown): InitializeResult {
    if (this.#initializing || this.#session !== null) {
      throw new RpcError(INVALID_REQUEST, "initialize may only be sent once per connection");
    }
    const p = parseParams(initializeParams, params, { method: "initialize" });
    this.#initializing = true;
    try {
      const registry = this.#options.registry;
      this.#session = p.resumeSessionId
        ? registry.resume(p.resumeSessionId, this)
        : registry.create(this);
    } finally {
      this.#initializing = false;
    }
    this.#binaryOutput = p.binaryOutput === true && this.#channel.binary;
    this.#binaryWrites = p.binaryWrites === true && this.#channel.binary;
    this.#session.processes.setWireFormat(this.#binaryOutput ? "binary" : "json");
    this.#options.log.debug(`${this.#channel.peer} (${p.clientName}) initialized`);
    const result: InitializeResult = { sessionId: this.#session.id, writeNotifications: true };
    if (this.#binaryOutput) result.binaryOutput = true;
    if (this.#binaryWrites) result.binaryWrites = true;
    return result;
  }

  #sendError(id: Id | null, code: number, message: string, data?: unknown): void {
    if (this.#closed) return;
    const error = data === undefined ? { code, message } : { code, message, data };
    this.#channel.send(JSON.stringify({ jsonrpc: "2.0", id, error }));
  }

  #onClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.log.debug(`${this.#channel.peer} disconnected: ${reason}`);
    this.#unpause();
    if (this.#session !== null) this.#options.registry.detach(this.#session, this);
    this.#options.onClose?.();
  }
}
