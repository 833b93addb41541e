/**
 * The calling side of JSON-RPC 2.0 over a {@link TextChannel}: request ids,
 * response matching (in any order), notification dispatch, and a disconnect
 * latch — once the channel ends, every pending call fails at once and every
 * later call fails fast with the same message.
 *
 * @module
 */

import { envelopeSchema } from "../protocol/schemas.ts";
import { METHOD_NOT_FOUND, RpcError } from "../protocol/errors.ts";
import { errorText, notificationText, requestText } from "../protocol/jsonrpc.ts";
import type { TextChannel } from "../transport/channel.ts";

/** Prefix of every error caused by a lost executor connection. */
export const DISCONNECTED_PREFIX = "exec-server transport disconnected";

/** A call failed because the connection to the executor is gone. */
export class DisconnectedError extends Error {
  /** Creates the error with the latched disconnect message. */
  constructor(message: string) {
    super(message);
    this.name = "DisconnectedError";
  }
}

/** Options of {@link RpcClient}. */
export interface RpcClientOptions {
  /** Receives every notification (method and raw params). */
  onNotification?: (method: string, params: unknown) => void;
  /** Receives binary messages (output frames). */
  onBinary?: (data: Uint8Array) => void;
  /** Called once, with the latched message, when the connection is lost. */
  onDisconnect?: (message: string) => void;
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** A JSON-RPC client over a text channel. */
export class RpcClient {
  readonly #channel: TextChannel;
  readonly #options: RpcClientOptions;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #disconnected: string | null = null;
  #closing: Promise<void> = Promise.resolve();

  /** Wraps a channel; the channel's handlers are taken over. */
  constructor(channel: TextChannel, options: RpcClientOptions = {}) {
    this.#channel = channel;
    this.#options = options;
    channel.onmessage = (text) => this.#onMessage(text);
    if (options.onBinary !== undefined) channel.onbinary = options.onBinary;
    channel.onclose = (reason) => this.disconnect(reason);
  }

  /** The latched disconnect message, or null while connected. */
  get disconnected(): string | null {
    return this.#disconnected;
  }

  /** Sends a request and resolves with its raw result; rejects with `RpcError` or `DisconnectedError`. */
  call(method: string, params?: unknown): Promise<unknown> {
    if (this.#disconnected !== null) {
      return Promise.reject(new DisconnectedError(this.#disconnected));
    }
    const id = this.#nextId++;
    const text = requestText(id, method, params === undefined ? undefined : JSON.stringify(params));
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#channel.send(text);
    });
  }

  /** Sends a notification. */
  notify(method: string, params?: unknown): void {
    if (this.#disconnected !== null) throw new DisconnectedError(this.#disconnected);
    this.#channel.send(
      notificationText(method, params === undefined ? undefined : JSON.stringify(params)),
    );
  }

  /**
   * Sends a binary request: `build` makes the frame for the request id it is
   * given; the response is matched by that id like any other.
   */
  callBinary(build: (id: number) => Uint8Array): Promise<unknown> {
    if (this.#disconnected !== null) {
      return Promise.reject(new DisconnectedError(this.#disconnected));
    }
    const id = this.#nextId++;
    const frame = build(id);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#channel.sendBinary(frame);
      } catch (error) {
        this.#pending.delete(id);
        reject(error);
      }
    });
  }

  /** Sends a binary notification (no response). */
  notifyBinary(frame: Uint8Array): void {
    if (this.#disconnected !== null) throw new DisconnectedError(this.#disconnected);
    this.#channel.sendBinary(frame);
  }

  /**
   * Latches the disconnect (first reason wins), fails every pending call and
   * closes the channel. Later calls fail fast.
   */
  disconnect(reason?: string): Promise<void> {
    if (this.#disconnected !== null) return this.#closing;
    const message = reason ? `${DISCONNECTED_PREFIX}: ${reason}` : DISCONNECTED_PREFIX;
    this.#disconnected = message;
    const error = new DisconnectedError(message);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of pending) call.reject(error);
    this.#closing = this.#channel.close();
    this.#options.onDisconnect?.(message);
    return this.#closing;
  }

  #onMessage(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.disconnect("the executor sent a message that is not JSON");
      return;
    }
    const parsed = envelopeSchema.safeParse(message);
    if (!parsed.success) {
      this.disconnect("the executor sent a message that is not a JSON-RPC object");
      return;
    }
    const envelope = parsed.data;
    if (envelope.method !== undefined) {
      if (envelope.id === undefined || envelope.id === null) {
        this.#options.onNotification?.(envelope.method, envelope.params);
      } else {
        // The executor never calls the client; answer so it does not wait.
        this.#channel.send(errorText(envelope.id, {
          code: METHOD_NOT_FOUND,
          message: `the client does not handle ${envelope.method}`,
        }));
      }
      return;
    }
    if (typeof envelope.id !== "number") return;
    const call = this.#pending.get(envelope.id);
    if (call === undefined) return;
    this.#pending.delete(envelope.id);
    if (envelope.error !== undefined) {
      const { code, message, data } = envelope.error;
      call.reject(new RpcError(code, message, data));
    } else {
      call.resolve(envelope.result);
    }
  }
}
