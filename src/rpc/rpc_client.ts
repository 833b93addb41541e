/**
 * The calling side of JSON-RPC 2.0 over a {@link TextChannel}: request ids,
 * response matching (in any order), notification dispatch, and a disconnect
 * latch — once the channel ends, every pending call fails at once and every
 * later call fails fast with the same message.
 *
 * A client that can reconnect suspends instead (`onLost` says so): calls
 * stay pending (new ones wait), the owner puts a new channel in
 * ({@link RpcClient.replaceChannel}), runs its handshake with
 * `{ now: true }` calls, then {@link RpcClient.release}s the held calls,
 * which go out again in the order they were first sent, under their ids.
 * A notification sent `replayable` is kept until a request sent after it on
 * the same channel is answered (the server handles a connection's messages
 * in order, so it had the notification by then), and goes out again with
 * the held calls when it was not.
 *
 * @module
 */

import defer * as schemas from "../protocol/schemas.ts";
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
  /**
   * The channel ended (not by {@link RpcClient.disconnect}): return true to
   * suspend (the owner will put a new channel in, or disconnect), false to
   * latch the disconnect as usual. Default: latch.
   */
  onLost?: (reason: string) => boolean;
}

/** A message kept to be sent again on a new channel. */
interface Outgoing {
  /** Its place in the order messages were first sent. */
  seq: number;
  /** The message as sent. */
  frame: string | Uint8Array;
  /** The channel it went out on; null while held. */
  sentOn: TextChannel | null;
}

interface Pending extends Outgoing {
  resolve(result: unknown): void;
  reject(error: Error): void;
  /** A handshake call (sent while others are held): it fails with its channel. */
  now: boolean;
}

/** Options of a call. */
export interface CallOptions {
  /** Send now, even while calls are held (a handshake on a new channel). */
  now?: boolean;
}

/** Options of a notification. */
export interface NotifyOptions extends CallOptions {
  /** Keep it until the server surely has it, and send it again after a reconnect if need be. */
  replayable?: boolean;
}

/** A JSON-RPC client over a text channel. */
export class RpcClient {
  #channel: TextChannel;
  readonly #options: RpcClientOptions;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  /** Replayable notifications the server may not have yet, in the order sent. */
  #unconfirmed = new Map<number, Outgoing>();
  #seq = 0;
  #disconnected: string | null = null;
  /** Calls wait for {@link release}: the channel was lost, or a new one is not handshaken yet. */
  #holding = false;
  #closing: Promise<void> = Promise.resolve();

  /** Wraps a channel; the channel's handlers are taken over. */
  constructor(channel: TextChannel, options: RpcClientOptions = {}) {
    this.#options = options;
    this.#channel = channel;
    this.#adopt(channel);
  }

  /** The latched disconnect message, or null while connected. */
  get disconnected(): string | null {
    return this.#disconnected;
  }

  /** True while calls are held (between a suspended channel and {@link release}). */
  get holding(): boolean {
    return this.#holding;
  }

  /** Replayable notifications not yet known to have reached the server. */
  get unconfirmed(): number {
    return this.#unconfirmed.size;
  }

  /**
   * Sends a request and resolves with its raw result; rejects with
   * `RpcError` or `DisconnectedError`. While calls are held it waits, unless
   * `now`.
   */
  call(method: string, params?: unknown, options: CallOptions = {}): Promise<unknown> {
    if (this.#disconnected !== null) {
      return Promise.reject(new DisconnectedError(this.#disconnected));
    }
    const id = this.#nextId++;
    const text = requestText(id, method, params === undefined ? undefined : JSON.stringify(params));
    return this.#send(id, text, options.now === true);
  }

  /**
   * Sends a notification. While calls are held it is dropped (there is no
   * channel to carry it), unless `replayable` (then it waits with the calls).
   */
  notify(method: string, params?: unknown, options: NotifyOptions = {}): void {
    if (this.#disconnected !== null) throw new DisconnectedError(this.#disconnected);
    const text = notificationText(
      method,
      params === undefined ? undefined : JSON.stringify(params),
    );
    this.#notify(text, options);
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
    return this.#send(id, build(id), false);
  }

  /** Sends a binary notification (no response), as {@link notify} does. */
  notifyBinary(frame: Uint8Array, options: NotifyOptions = {}): void {
    if (this.#disconnected !== null) throw new DisconnectedError(this.#disconnected);
    this.#notify(frame, options);
  }

  #notify(frame: string | Uint8Array, options: NotifyOptions): void {
    if (options.replayable) {
      const kept: Outgoing = { seq: ++this.#seq, frame, sentOn: null };
      this.#unconfirmed.set(kept.seq, kept);
      if (!this.#holding || options.now) this.#transmit(kept);
      return;
    }
    if (this.#holding && !options.now) return;
    if (typeof frame === "string") this.#channel.send(frame);
    else this.#channel.sendBinary(frame);
  }

  /**
   * Puts a new channel in after a loss. Calls stay held until
   * {@link release}; meanwhile `{ now: true }` calls (the handshake) go out
   * on it.
   */
  replaceChannel(channel: TextChannel): void {
    const old = this.#channel;
    old.onmessage = () => {};
    old.onbinary = () => {};
    old.onclose = () => {};
    this.#holding = true;
    this.#channel = channel;
    this.#adopt(channel);
    this.#orphan(old, "the channel was replaced");
  }

  /** Sends the held calls and notifications again, in their first order, and stops holding. */
  release(): void {
    if (this.#disconnected !== null) return;
    this.#holding = false;
    const held = [...this.#pending.values(), ...this.#unconfirmed.values()]
      .filter((message) => message.sentOn === null)
      .sort((a, b) => a.seq - b.seq);
    for (const message of held) this.#transmit(message);
  }

  #adopt(channel: TextChannel): void {
    channel.onmessage = (text) => this.#onMessage(text);
    if (this.#options.onBinary !== undefined) channel.onbinary = this.#options.onBinary;
    channel.onclose = (reason) => {
      if (channel !== this.#channel || this.#disconnected !== null) return;
      if (this.#options.onLost?.(reason) === true) {
        this.#holding = true;
        this.#orphan(channel, reason);
      } else {
        this.disconnect(reason);
      }
    };
  }

  /**
   * The calls sent on a lost channel: handshake calls fail (their channel is
   * gone), the others are held to go out again.
   */
  #orphan(channel: TextChannel, reason: string): void {
    for (const kept of this.#unconfirmed.values()) {
      if (kept.sentOn === channel) kept.sentOn = null;
    }
    for (const [id, call] of this.#pending) {
      if (call.sentOn !== channel) continue;
      if (call.now) {
        this.#pending.delete(id);
        call.reject(new DisconnectedError(`${DISCONNECTED_PREFIX}: ${reason}`));
      } else {
        call.sentOn = null;
      }
    }
  }

  #send(id: number, frame: string | Uint8Array, now: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const call: Pending = { resolve, reject, frame, sentOn: null, now, seq: ++this.#seq };
      this.#pending.set(id, call);
      if (this.#holding && !now) return;
      try {
        this.#transmit(call);
      } catch (error) {
        this.#pending.delete(id);
        reject(error);
      }
    });
  }

  #transmit(message: Outgoing): void {
    const { frame } = message;
    if (typeof frame === "string") this.#channel.send(frame);
    else this.#channel.sendBinary(frame);
    message.sentOn = this.#channel;
  }

  /** An answer to `call` proves the server had what went before it on the same channel. */
  #confirm(call: Pending): void {
    for (const kept of this.#unconfirmed.values()) {
      if (kept.seq > call.seq) break;
      if (kept.sentOn === call.sentOn) this.#unconfirmed.delete(kept.seq);
    }
  }

  /**
   * Latches the disconnect (first reason wins), fails every pending call and
   * closes the channel. Later calls fail fast.
   */
  disconnect(reason?: string): Promise<void> {
    if (this.#disconnected !== null) return this.#closing;
    const message = reason ? `${DISCONNECTED_PREFIX}: ${reason}` : DISCONNECTED_PREFIX;
    this.#disconnected = message;
    this.#holding = false;
    this.#unconfirmed.clear();
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
    const parsed = schemas.envelopeSchema.safeParse(message);
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
    if (this.#unconfirmed.size > 0) this.#confirm(call);
    if (envelope.error !== undefined) {
      const { code, message, data } = envelope.error;
      call.reject(new RpcError(code, message, data));
    } else {
      call.resolve(envelope.result);
    }
  }
}
