/**
 * One client connection on the executor: decodes each message (JSON text or
 * a binary frame) into a call, enforces the initialize → initialized
 * handshake, and runs the call's method from the method table. Requests run
 * **concurrently** (a long-polling read never holds up a write); responses
 * go out as each finishes, matched by id.
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";
import { INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError } from "../protocol/errors.ts";
import { decodeOutputFrame, outputFrameToJson } from "../protocol/binary_output.ts";
import { errorText, type RequestId, resultText } from "../protocol/jsonrpc.ts";
import { Method } from "../protocol/methods.ts";
import type { InitializeParams, InitializeResult } from "../protocol/schemas.ts";
import { parseParams } from "../protocol/validate.ts";
import type { TextChannel } from "../transport/channel.ts";
import { environmentInfo } from "./environment.ts";
import { OutboundFlow } from "./flow_control.ts";
import { type Call, decodeBinary, decodeText, type Inbound } from "./inbound.ts";
import { methodTable } from "./method_table.ts";
import {
  CloseConnection,
  type ConnectionContext,
  type HandshakeContext,
  RawJson,
  ResponseThen,
} from "./methods.ts";
import type { Session, SessionRegistry, SessionSink } from "./session_registry.ts";
import type { CallLog } from "./call_log.ts";
import { inSpan, TRACING } from "../util/telemetry.ts";

/** Options of {@link ServerConnection}. */
export interface ServerConnectionOptions {
  /** The executor's sessions. */
  registry: SessionRegistry;
  /** Logs (stderr). */
  log: Logger;
  /** Most requests in flight at once. */
  maxPendingRequests: number;
  /** Outbound bytes the connection may queue (see `flow_control.ts`). */
  maxBufferedBytes: number;
  /** Close a connection whose queue made no progress for this long. */
  stallTimeoutMs: number;
  /** Called once when the connection ended. */
  onClose?: () => void;
}

/** The executor's side of one connection. */
export class ServerConnection implements SessionSink, HandshakeContext, ConnectionContext {
  /** This connection's streaming HTTP responses, by `requestId`. */
  readonly httpStreams: Map<string, AbortController> = new Map();
  readonly #ended = new AbortController();
  readonly #channel: TextChannel;
  readonly #options: ServerConnectionOptions;
  readonly #flow: OutboundFlow;
  #session: Session | null = null;
  #initializing = false;
  #initialized = false;
  #closed = false;
  #inFlight = 0;
  #binaryOutput = false;
  #binaryWrites = false;
  /** The client's name for its request numbering (`resumableCalls`), or null. */
  #callSpace: string | null = null;

  /** Serves a channel until it closes. */
  constructor(channel: TextChannel, options: ServerConnectionOptions) {
    this.#channel = channel;
    this.#options = options;
    this.#flow = new OutboundFlow(channel, {
      maxBufferedBytes: options.maxBufferedBytes,
      stallTimeoutMs: options.stallTimeoutMs,
      log: options.log,
      pause: () => this.#session?.processes.pauseAll(),
      resume: () => this.#session?.processes.resumeAll(),
    });
    const peer = channel.peer;
    channel.onmessage = (text) => this.#accept(decodeText(text, peer));
    channel.onbinary = (bytes) =>
      this.#accept(decodeBinary(bytes, { binaryWrites: this.#binaryWrites, peer }));
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
    this.#flow.sent();
  }

  /** Aborted when the connection ends. */
  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  /** Sends a notification that is not a process's (a streamed HTTP body's). */
  notify(text: string): void {
    if (this.#closed) return;
    this.#channel.send(text);
    this.#flow.sent();
  }

  /** Resolves once the outgoing queue is below its high-water mark (or the connection ended). */
  drained(): Promise<void> {
    return this.#flow.drained(this.#ended.signal);
  }

  /** Closes the connection. */
  close(code?: number, reason?: string): Promise<void> {
    return this.#channel.close(code, reason);
  }

  /** Opens or resumes this connection's session (the `initialize` method). */
  initialize(params: InitializeParams): InitializeResult {
    if (this.#initializing || this.#session !== null) {
      throw new RpcError(INVALID_REQUEST, "initialize may only be sent once per connection");
    }
    this.#initializing = true;
    try {
      const registry = this.#options.registry;
      this.#session = params.resumeSessionId
        ? registry.resume(params.resumeSessionId, this)
        : registry.create(this);
    } finally {
      this.#initializing = false;
    }
    this.#binaryOutput = params.binaryOutput === true && this.#channel.binary;
    this.#binaryWrites = params.binaryWrites === true && this.#channel.binary;
    this.#callSpace = params.resumableCalls ?? null;
    this.#session.processes.setWireFormat(this.#binaryOutput ? "binary" : "json");
    this.#options.log.debug(`${this.#channel.peer} (${params.clientName}) initialized`);
    const result: InitializeResult = {
      sessionId: this.#session.id,
      writeNotifications: true,
      environmentInfo: environmentInfo(),
    };
    if (this.#binaryOutput) result.binaryOutput = true;
    if (this.#binaryWrites) result.binaryWrites = true;
    if (this.#callSpace !== null) result.resumableCalls = true;
    return result;
  }

  #accept(inbound: Inbound): void {
    if (inbound === null) return;
    if ("rejected" in inbound) {
      this.#sendError(inbound.rejected.id, inbound.rejected.error);
    } else if (inbound.call.id === undefined) {
      this.#notification(inbound.call);
    } else {
      this.#request(inbound.call, inbound.call.id);
    }
  }

  /**
   * A notification: `initialized`, or a method that may come as one (a
   * `process/write` whose status nobody waits for). Anything else, and
   * anything before the handshake, is ignored.
   */
  #notification(call: Call): void {
    if (call.method === Method.initialized) {
      if (this.#session !== null) this.#initialized = true;
      else this.#options.log.warn(`${this.#channel.peer} sent initialized before initialize`);
      return;
    }
    const entry = methodTable.get(call.method);
    if (entry === undefined || entry.family === "handshake" || entry.notifiable !== true) {
      this.#options.log.debug(`ignoring notification ${call.method} from ${this.#channel.peer}`);
      return;
    }
    const failed = (error: unknown) => this.#failedNotification(call.method, error);
    try {
      const result = this.#run(call, true);
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  #failedNotification(method: string, error: unknown): void {
    if (error instanceof CloseConnection) {
      this.#options.log.warn(`${this.#channel.peer}: ${error.message}: closing it`);
      this.#channel.close(error.code, error.message);
      return;
    }
    this.#options.log.debug(`${method} notification failed: ${(error as Error).message}`);
  }

  async #request(call: Call, id: RequestId): Promise<void> {
    if (this.#flow.full) {
      // The client does not read its responses: answer nothing big until it does.
      this.#sendError(id, {
        code: INVALID_REQUEST,
        message:
          `the connection's outgoing queue is full (${this.#channel.bufferedAmount} bytes): ` +
          `read the responses first (--max-buffered-bytes)`,
      });
      return;
    }
    const max = this.#options.maxPendingRequests;
    if (this.#inFlight >= max) {
      this.#sendError(id, {
        code: INVALID_REQUEST,
        message:
          `too many requests in flight on this connection: the limit is ${max} (--max-pending-requests)`,
      });
      return;
    }
    this.#inFlight++;
    try {
      const calls = this.#callLog(call, id);
      const seen = calls?.lookup(id as number) ?? { kind: "new" as const };
      let text: string | null;
      if (seen.kind === "answered") {
        text = seen.text;
      } else if (seen.kind === "running") {
        text = await seen.answer;
      } else if (seen.kind === "forgotten") {
        text = errorText(id, {
          code: INVALID_REQUEST,
          message: `the answer to request ${id} (${call.method}) was lost with the ` +
            `connection and is no longer kept: the call ran once; check its effect before repeating it`,
        });
      } else {
        const answer = this.#answer(call, id);
        calls?.begin(id as number, answer.then((a) => a.text));
        const { text, after } = await answer;
        if (text !== null) this.#reply(text);
        after?.();
        return;
      }
      if (text !== null) this.#reply(text);
    } finally {
      this.#inFlight--;
    }
  }

  /** Sends a response (it counts against the outgoing queue: pipelined reads of big output). */
  #reply(text: string): void {
    if (this.#closed) return;
    this.#channel.send(text);
    this.#flow.sent();
  }

  /** The session's call log when this client repeats calls after a resume (`resumableCalls`). */
  #callLog(call: Call, id: RequestId): CallLog | null {
    const space = this.#callSpace;
    if (space === null || this.#session === null || !Number.isSafeInteger(id)) return null;
    return methodTable.get(call.method)?.family === "handshake"
      ? null
      : this.#session.callLog(space);
  }

  /**
   * Runs a request to its response text (null when there is none to send:
   * the method closed the connection) and what the method wants run once
   * the response is out.
   */
  async #answer(
    call: Call,
    id: RequestId,
  ): Promise<{ text: string | null; after?: () => void }> {
    try {
      let result = TRACING
        ? await inSpan(call.method, {
          kind: "server",
          attributes: { "rpc.system": "jsonrpc", "rpc.method": call.method },
        }, async () => await this.#run(call, false))
        : await this.#run(call, false);
      let after: (() => void) | undefined;
      if (result instanceof ResponseThen) {
        after = result.after;
        result = result.result;
      }
      const json = result instanceof RawJson ? result.text : JSON.stringify(result ?? {});
      return { text: resultText(id, json), after };
    } catch (error) {
      if (error instanceof RpcError) {
        const { code, message, data } = error;
        return { text: errorText(id, { code, message, data }) };
      }
      if (error instanceof CloseConnection) {
        this.#failedNotification(call.method, error);
        return { text: null };
      }
      this.#options.log.error(`${call.method} failed: ${(error as Error)?.stack ?? error}`);
      const message = `${call.method} failed: ${(error as Error)?.message}`;
      return { text: errorText(id, { code: INTERNAL_ERROR, message }) };
    }
  }

  /**
   * Runs a call's method: the handshake and the session's ownership checked,
   * then the params, then the handler. Throws (synchronously, or through the
   * promise it returns) an `RpcError` for the client.
   */
  #run(call: Call, notification: boolean): unknown {
    const entry = methodTable.get(call.method);
    if (entry === undefined) {
      throw new RpcError(METHOD_NOT_FOUND, `unknown method ${JSON.stringify(call.method)}`);
    }
    if (entry.family === "handshake") {
      return entry.run(parseParams(entry.params(), call.params, call), this);
    }
    const session = this.#session;
    if (session === null) {
      throw new RpcError(
        INVALID_REQUEST,
        `client must call initialize before using ${entry.family} methods`,
      );
    }
    if (!this.#initialized) {
      throw new RpcError(
        INVALID_REQUEST,
        `client must send initialized before using ${entry.family} methods`,
      );
    }
    if (session.sink !== this) {
      throw new RpcError(INVALID_REQUEST, "session has been resumed by another connection");
    }
    return entry.run(parseParams(entry.params(), call.params, call), {
      session,
      notification,
      connection: this,
    });
  }

  #sendError(id: RequestId, error: { code: number; message: string; data?: unknown }): void {
    if (!this.#closed) this.#channel.send(errorText(id, error));
  }

  #onClose(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ended.abort();
    this.#options.log.debug(`${this.#channel.peer} disconnected: ${reason}`);
    this.#flow.stop();
    if (this.#session !== null) this.#options.registry.detach(this.#session, this);
    this.#options.onClose?.();
  }
}
