/**
 * {@link TextChannel}s over WebSockets: the executor's side of a connection
 * (`Deno.upgradeWebSocket`) and the client's (`connectWebSocket`).
 *
 * @module
 */

import { makeChannel, type TextChannel } from "./channel.ts";
import type { WebSocketClient } from "./websocket_client.ts";

/**
 * Adapts a server-side WebSocket from `Deno.upgradeWebSocket`. A message
 * larger than `maxMessageBytes` closes the connection with 1009.
 */
export function serverWebSocketChannel(
  socket: WebSocket,
  peer: string,
  options: { maxMessageBytes?: number } = {},
): TextChannel {
  const max = options.maxMessageBytes ?? Infinity;
  const open = () => socket.readyState === WebSocket.OPEN;
  const { channel, deliver, end } = makeChannel({
    peer,
    binary: true,
    buffered: () => socket.bufferedAmount,
    send(text) {
      if (open()) socket.send(text);
    },
    sendBinary(data) {
      if (open()) socket.send(data);
    },
    close(code, reason) {
      if (open() || socket.readyState === WebSocket.CONNECTING) socket.close(code ?? 1000, reason);
      return Promise.resolve();
    },
  });
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const data = event.data as string | ArrayBuffer;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > max) {
      channel.close(1009, `message too big: the limit is ${max} bytes (--max-frame-bytes)`);
      return;
    }
    deliver(typeof data === "string" ? data : new Uint8Array(data));
  };
  socket.onclose = (event) => end(`websocket closed (code ${event.code})`);
  socket.onerror = () => end("websocket error");
  return channel;
}

/** Adapts the client from `connectWebSocket`. */
export function clientWebSocketChannel(client: WebSocketClient, peer: string): TextChannel {
  const { channel, deliver, end } = makeChannel({
    peer,
    binary: true,
    buffered: () => client.bufferedAmount,
    send: (text) => client.send(text),
    sendBinary: (data) => client.sendBinary(data),
    close: (code, reason) => client.close(code, reason).catch(() => {}),
  });
  client.onmessage = deliver;
  client.onclose = (event) => {
    const reason = event.reason ? `: ${event.reason}` : "";
    end(`connection closed (code ${event.code}${reason})`);
  };
  return channel;
}
