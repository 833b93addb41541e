/**
 * Turning lines of a server's stdout into JSON-RPC messages, and messages
 * into lines, for both MCP stdio transports.
 *
 * @module
 */

// Deferred: the SDK's types module (hundreds of zod schemas, ~9 MiB and ~20 ms to evaluate) runs
// on the first message decoded, not when the library's entry point loads, which `serve` does.
// @ts-types="@modelcontextprotocol/sdk/types"
import defer * as sdkTypes from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../log/logger.ts";
import type { JsonRpcMessage } from "./types.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();
let messageSchema: typeof sdkTypes.JSONRPCMessageSchema | undefined;

/** Encodes a message as one line (JSON plus `\n`). */
export function encodeMessage(message: JsonRpcMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/**
 * Parses one line of a stdio peer: a server's stdout, or (with `writer`) what
 * an MCP client wrote. A line that is not a JSON-RPC message is logged
 * (servers print banners and warnings there) and skipped: returns null.
 */
export function decodeMessage(
  line: Uint8Array,
  options: { name: string; log: Logger; writer?: string },
): JsonRpcMessage | null {
  const { name, log } = options;
  if (line.byteLength === 0) return null;
  const writer = options.writer ?? `MCP server ${name}`;
  const text = decoder.decode(line);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    log.warn(`${writer} wrote a line that is not JSON; skipped: ${preview(text)}`);
    return null;
  }
  messageSchema ??= sdkTypes.JSONRPCMessageSchema;
  const parsed = messageSchema.safeParse(value);
  if (!parsed.success) {
    log.warn(`${writer} wrote JSON that is not a JSON-RPC message; skipped: ${preview(text)}`);
    return null;
  }
  return parsed.data;
}

/** Logs a server's stderr, one line at a time, never into the protocol. */
export function logStderrLine(line: Uint8Array, options: { name: string; log: Logger }): void {
  const { name, log } = options;
  log.info(`MCP server stderr (${name}): ${decoder.decode(line)}`);
}

function preview(text: string): string {
  return JSON.stringify(text.length > 200 ? text.slice(0, 200) + "…" : text);
}
