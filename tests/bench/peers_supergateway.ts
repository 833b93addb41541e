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

import { Client } from "@modelcontextprotocol/sdk/client";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import type { JSONRPCMessage } from "../../src/mcp/messages.ts";
import { connectWebSocket, type WebSocketClient } from "../../src/rpc/websocket_client.ts";
import { freePort, PeerProcess, waitForPort } from "./peers_process.ts";
import { percentile } from "./report.ts";
import type { McpSettings } from "./mcp_scenarios.ts";
import type { MetricValues } from "./scenario.ts";
import type { RunContext } from "./targets.ts";

/** The MCP server every MCP row runs (as in mcp_scenarios.ts). */
export const SERVER_EVERYTHING = new URL(
  "../e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
  import.meta.url,
).pathname;

const MESSAGE_PATH = "/message";

/** An MCP SDK transport over one WebSocket connection (one message per text frame). */
export class WebSocketClientTransport implements Transport {
  /** Called once when the connection closed. */
  onclose?: () => void;
  /** Called on a frame that is not JSON, or a connection error. */
  onerror?: (error: Error) => void;
  /** Called for every message. */
  onmessage?: (message: JSONRPCMessage) => void;
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
      let message: JSONRPCMessage;
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
  send(message: JSONRPCMessage): Promise<void> {
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

/**
 * MCP `echo` through `transport`: 200 warm-up calls, `mcpEchoes` measured
 * small calls, one warm-up and `mcpBigEchoes` measured 1 MB calls — the same
 * procedure as the MCP scenario of the main run (mcp_scenarios.ts).
 */
export async function measureMcpEcho(
  transport: Transport,
  settings: McpSettings,
  ctx: RunContext,
): Promise<MetricValues> {
  const client = new Client({ name: "execbridge-bench", version: "1.0.0" });
  const onAbort = () => void client.close().catch(() => {});
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await client.connect(transport);
    const echo = async (message: string) => {
      ctx.checkAborted();
      const result = await client.callTool({ name: "echo", arguments: { message } });
      const text = (result.content as { text?: string }[])[0]?.text ?? "";
      if (!text.endsWith(message)) throw new Error("echo returned something else");
    };
    for (let i = 0; i < 200; i++) await echo("warm-up");
    const small: number[] = [];
    for (let i = 0; i < settings.mcpEchoes; i++) {
      const t0 = performance.now();
      await echo(`hello ${i}`);
      small.push(performance.now() - t0);
    }
    const big = "y".repeat(1_000_000);
    await echo(big);
    const large: number[] = [];
    for (let i = 0; i < settings.mcpBigEchoes; i++) {
      const t0 = performance.now();
      await echo(big);
      large.push(performance.now() - t0);
    }
    return {
      mcp_p50: percentile(small, 0.5),
      mcp_p99: percentile(small, 0.99),
      mcp_1mb_p50: percentile(large, 0.5),
    };
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await client.close().catch(() => {});
    await transport.close().catch(() => {});
  }
}
