/**
 * supergateway (npm `supergateway`) as a benchmark peer: `--stdio` around
 * server-everything with `--outputTransport ws`, reached by the MCP SDK
 * `Client` over a WebSocket {@link Transport}.
 *
 * The transport is a small adapter over execbridge's `connectWebSocket`
 * (TCP_NODELAY): Deno's built-in `WebSocket` client leaves Nagle's algorithm
 * on, and the ~40 ms stalls that causes on back-to-back small frames would be
 * the client's cost, not supergateway's. supergateway's ws mode takes one
 * JSON-RPC message per text frame on `--messagePath` (default `/message`)
 * and answers in kind; it prefixes request ids with a per-client id on the
 * way to the server and turns them back into numbers on the way out, so
 * the client's request ids must be numbers (the SDK's are).
 *
 * @module
 */

import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import type { JsonRpcMessage } from "../../src/mcp/types.ts";
import { connectWebSocket, type WebSocketClient } from "../../src/transport/websocket_client.ts";
import { freePort, PeerProcess, waitForPort } from "./peers_process.ts";
import { SERVER_EVERYTHING } from "./mcp_scenarios.ts";

const MESSAGE_PATH = "/message";

/** An MCP SDK transport over one WebSocket connection (one message per text frame). */
export class WebSocketClientTransport implements Transport {
  /** Called once when the connection closed. */
  onclose?: () => void;
  /** Called on a frame that is not JSON, or a connection error. */
  onerror?: (error: Error) => void;
  /** Called for every message. */
  onmessage?: (message: JsonRpcMessage) => void;
  readonly #url: string;
  #socket: WebSocketClient | null = null;

  /** A transport that connects to `url` when started. */
  constructor(url: string) {
    this.#url = url;
  }

  /** Connects (the SDK `Client` calls this from `connect`). */
  async start(): Promise<void> {
    if (this.#socket !== null) throw new Error("the transport was already started");
    const socket = await connectWebSocket(this.#url, { connectTimeoutMs: 10_000 });
    this.#socket = socket;
    const decoder = new TextDecoder();
    socket.onmessage = (data) => {
      const text = typeof data === "string" ? data : decoder.decode(data);
      let message: JsonRpcMessage;
      try {
        message = JSON.parse(text);
      } catch (error) {
        this.onerror?.(new Error(`not JSON from ${this.#url}: ${(error as Error).message}`));
        return;
      }
      this.onmessage?.(message);
    };
    socket.onclose = () => this.onclose?.();
  }

  /** Sends one message as one text frame. */
  send(message: JsonRpcMessage): Promise<void> {
    if (this.#socket === null) return Promise.reject(new Error("the transport is not started"));
    this.#socket.send(JSON.stringify(message));
    return Promise.resolve();
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#socket?.close();
  }
}

/** A running `supergateway --stdio … --outputTransport ws`. */
export interface Supergateway {
  /** The gateway process. */
  readonly process: PeerProcess;
  /** Its WebSocket endpoint. */
  readonly url: string;
  /** Stops the gateway and the server it runs. */
  stop(): Promise<void>;
}

/**
 * Starts supergateway around server-everything on a free loopback port
 * (`--logLevel none`: at the default level it prints every message it
 * relays to stdout).
 */
export async function startSupergateway(entry: string): Promise<Supergateway> {
  const port = freePort();
  const stdio = `node '${SERVER_EVERYTHING.replaceAll("'", "'\\''")}' stdio`;
  const process = new PeerProcess(
    `supergateway (port ${port})`,
    "node",
    [
      entry,
      "--stdio",
      stdio,
      "--outputTransport",
      "ws",
      "--port",
      String(port),
      "--messagePath",
      MESSAGE_PATH,
      "--logLevel",
      "none",
    ],
    // stdin piped: closing it makes the gateway stop its child and exit.
    { stdin: "piped" },
  );
  try {
    await waitForPort(port, process, 30_000);
    return {
      process,
      url: `ws://127.0.0.1:${port}${MESSAGE_PATH}`,
      stop: () => process.stop(8000, "stdin"),
    };
  } catch (error) {
    await process.stop(0);
    throw error;
  }
}
