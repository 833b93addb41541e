/**
 * A message channel carrying one JSON-RPC message per text message, over a
 * WebSocket (client or server side, `websocket_channel.ts`) or
 * newline-delimited stdio (`line_channel.ts`). Both ends of the protocol are
 * written against this, not against a transport.
 *
 * @module
 */

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

/** What a transport provides to make a {@link TextChannel}. */
export interface ChannelEnds {
  /** The peer, for logs. */
  peer: string;
  /** Whether binary messages can be sent. */
  binary: boolean;
  /** Bytes queued, not yet written. */
  buffered(): number;
  /** Sends a text message. */
  send(text: string): void;
  /** Sends a binary message. */
  sendBinary(data: Uint8Array): void;
  /** Closes the transport. */
  close(code?: number, reason?: string): Promise<void>;
}

/** A channel, and what its transport calls on it. */
export interface ChannelHandle {
  /** The channel, for the protocol. */
  channel: TextChannel;
  /** Hands an inbound message to the channel's handlers (binary as text when none takes it). */
  deliver(data: string | Uint8Array): void;
  /** The transport ended: `onclose` runs (once, whatever the number of calls). */
  end(reason: string): void;
}

const decoder = new TextDecoder();

/** Makes a channel over a transport's ends. */
export function makeChannel(ends: ChannelEnds): ChannelHandle {
  let ended = false;
  const channel: TextChannel = {
    onmessage: null,
    onbinary: null,
    onclose: null,
    peer: ends.peer,
    binary: ends.binary,
    get bufferedAmount() {
      return ends.buffered();
    },
    send: ends.send,
    sendBinary: ends.sendBinary,
    close: ends.close,
  };
  return {
    channel,
    deliver(data) {
      if (typeof data === "string") channel.onmessage?.(data);
      else if (channel.onbinary !== null) channel.onbinary(data);
      else channel.onmessage?.(decoder.decode(data));
    },
    end(reason) {
      if (ended) return;
      ended = true;
      channel.onclose?.(reason);
    },
  };
}
