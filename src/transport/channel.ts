/**
 * A message channel carrying one JSON-RPC message per text message, over a
 * WebSocket (client or server side) or newline-delimited stdio. Both ends of
 * the protocol are written against this, not against a transport.
 *
 * @module
 */

import { LineSplitter, LineTooLongError } from "../util/lines.ts";
import type { WebSocketClient } from "./websocket_client.ts";

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A bidirectional channel of text messages. */
export interface TextChannel {
  /** Sends one message. A no-op once the channel closed. */
  send(text: string): void;
  /** Whether binary messages can be sent (WebSocket, not stdio). */
  readonly binary: boolean;
  /** Sends one binary message (only when {@link binary}). */
  sendBinary(data: Uint8Array): void;
  /** Receives each inbound text message. */
  onmessage: ((text: string) => void) | null;
  /** Receives inbound binary messages when set (otherwise they are decoded as UTF-8 text). */
  onbinary: ((data: Uint8Array) => void) | null;
  /** Called once when the channel ends, with a reason for logs and errors. */
  onclose: ((reason: string) => void) | null;
  /** Bytes accepted by `send` but not yet written (backpressure signal). */
  readonly bufferedAmount: number;
  /** Closes the channel (optionally with a WebSocket close code); resolves once it is closed. */
  close(code?: number, reason?: string): Promise<void>;
  /** A description of the peer for logs (address or "stdio"). */
  readonly peer: string;
}

/**
 * Adapts a server-side WebSocket from `Deno.upgradeWebSocket`. A message
 * larger than `maxMessageBytes` closes the connection with 1009.
 */
export function serverWebSocketChannel(
  socket: WebSocket,
  peer: string,
  options: { maxMessageBytes?: number } = {},
): TextChannel {
  const decoder = new TextDecoder();
  const max = options.maxMessageBytes ?? Infinity;
  const channel: TextChannel = {
    onmessage: null,
    onbinary: null,
    onclose: null,
    peer,
    binary: true,
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send(text) {
      if (socket.readyState === WebSocket.OPEN) socket.send(text);
    },
    sendBinary(data) {
      if (socket.readyState === WebSocket.OPEN) socket.send(data);
    },
    close(code, reason) {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
        socket.close(code ?? 1000, reason);
      }
      return Promise.resolve();
    },
  };
  socket.onmessage = (event) => {
    const data = event.data;
    const size = typeof data === "string" ? data.length : (data as ArrayBuffer).byteLength;
    if (size > max) {
      channel.close(1009, `message too big: the limit is ${max} bytes (--max-frame-bytes)`);
      return;
    }
    if (typeof data === "string") channel.onmessage?.(data);
    else if (channel.onbinary !== null) channel.onbinary(new Uint8Array(data as ArrayBuffer));
    else channel.onmessage?.(decoder.decode(data));
  };
  socket.binaryType = "arraybuffer";
  let closed = false;
  const onEnd = (reason: string) => {
    if (closed) return;
    closed = true;
    channel.onclose?.(reason);
  };
  socket.onclose = (event) => onEnd(`websocket closed (code ${event.code})`);
  socket.onerror = () => onEnd("websocket error");
  return channel;
}

/** Adapts the client from `connectWebSocket`. */
export function clientWebSocketChannel(client: WebSocketClient, peer: string): TextChannel {
  const decoder = new TextDecoder();
  const channel: TextChannel = {
    onmessage: null,
    onbinary: null,
    onclose: null,
    peer,
    binary: true,
    get bufferedAmount() {
      return client.bufferedAmount;
    },
    send(text) {
      client.send(text);
    },
    sendBinary(data) {
      client.sendBinary(data);
    },
    close(code, reason) {
      return client.close(code, reason).catch(() => {});
    },
  };
  client.onmessage = (data) => {
    if (typeof data === "string") channel.onmessage?.(data);
    else if (channel.onbinary !== null) channel.onbinary(data);
    else channel.onmessage?.(decoder.decode(data));
  };
  client.onclose = (event) => {
    const reason = event.reason ? `: ${event.reason}` : "";
    channel.onclose?.(`connection closed (code ${event.code}${reason})`);
  };
  return channel;
}

/**
 * A channel over byte streams with one message per line (`\n`-terminated,
 * trailing `\r` trimmed): `serve --listen stdio`, or a client talking to an
 * executor started over ssh.
 */
export function lineChannel(
  readable: ReadableStream<Uint8Array>,
  writable: WritableStream<Uint8Array>,
  options: { peer?: string; maxLineBytes?: number } = {},
): TextChannel {
  const encoder = new TextEncoder();
  const writer = writable.getWriter();
  const maxLine = options.maxLineBytes ?? 64 * 1024 * 1024;
  let buffered = 0;
  let closed = false;
  let pending: Promise<void> = Promise.resolve();
  const reader = readable.getReader();
  const channel: TextChannel = {
    onmessage: null,
    onbinary: null,
    onclose: null,
    peer: options.peer ?? "stdio",
    binary: false,
    sendBinary() {
      throw new Error("a line channel carries text only");
    },
    get bufferedAmount() {
      return buffered;
    },
    send(text) {
      if (closed) return;
      const bytes = encoder.encode(text + "\n");
      buffered += bytes.byteLength;
      pending = pending.then(() => writer.write(bytes)).then(
        () => {
          buffered -= bytes.byteLength;
        },
        () => end("write failed"),
      );
    },
    close() {
      end("closed");
      return finished;
    },
  };
  let finished: Promise<void> = Promise.resolve();
  function end(reason: string): void {
    if (closed) return;
    closed = true;
    finished = Promise.all([
      reader.cancel().catch(() => {}),
      pending.then(() => writer.close()).catch(() => {}),
    ]).then(() => {});
    channel.onclose?.(reason);
  }
  (async () => {
    const decoder = new TextDecoder();
    const splitter = new LineSplitter(maxLine);
    const onLine = (line: Uint8Array) => {
      const text = decoder.decode(line).trim();
      if (text.length > 0) channel.onmessage?.(text);
    };
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        splitter.push(value, onLine);
      }
      splitter.flush(onLine);
      end("end of input");
    } catch (error) {
      end(error instanceof LineTooLongError ? error.message : `read failed: ${errorText(error)}`);
    }
  })();
  return channel;
}
