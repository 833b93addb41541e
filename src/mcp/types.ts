/**
 * The MCP shapes execbridge's public API hands out, written out with their
 * documentation: a transport, the messages it carries, a tool and a tool
 * call's result. Each is structurally compatible with the MCP SDK's own
 * type (`Transport`, `JSONRPCMessage`, `Tool`, `CallToolResult`: a test
 * checks it), so an SDK `Client` connects to an {@link McpTransport} as is.
 *
 * @module
 */

/** A JSON-RPC 2.0 message as MCP carries it: a request, a notification or a response. */
export interface JsonRpcMessage {
  /** Always `"2.0"`. */
  jsonrpc: "2.0";
  /** The id of a request or of the response to it; absent on notifications. */
  id?: string | number;
  /** The method of a request or a notification. */
  method?: string;
  /** The params of a request or a notification. */
  params?: unknown;
  /** The result of a successful request. */
  result?: unknown;
  /** The error of a failed request. */
  error?: { code: number; message: string; data?: unknown };
}

/**
 * A connection to one MCP server, in the MCP SDK's `Transport` shape: pass
 * it to `Client.connect()`.
 */
export interface McpTransport {
  /** Starts reading from the server (the SDK's `Client.connect()` calls it). */
  start(): Promise<void>;
  /** Sends one message to the server. */
  send(message: JsonRpcMessage): Promise<void>;
  /** Stops the server and closes the transport; `onclose` runs. */
  close(): Promise<void>;
  /** Called once when the transport closed. */
  onclose?: () => void;
  /** Called on errors (not necessarily fatal). */
  onerror?: (error: Error) => void;
  /** Called for each message from the server. */
  onmessage?: (message: JsonRpcMessage) => void;
}

/**
 * How a stdio server's transport ended, as far as it saw: the process's exit
 * code and signal, or why the process can no longer be observed (an
 * executor connection lost).
 */
export interface McpServerExit {
  /** Exit code, when the exit was seen (128 + the signal's number after a signal). */
  exitCode: number | null;
  /** The signal that ended it, if any (`SIGKILL`, …). */
  signal: string | null;
  /** Set when the process could no longer be observed, instead of an exit: what happened. */
  failure?: string;
}

/** The JSON Schema of a tool's arguments (an object schema). */
export interface McpToolInputSchema {
  /** Always `"object"`. */
  type: "object";
  /** The arguments, by name. */
  properties?: Record<string, unknown>;
  /** The names of the required arguments. */
  required?: string[];
  /** Any other JSON Schema keyword. */
  [keyword: string]: unknown;
}

/** A tool as its server lists it in `tools/list` (structurally the SDK's `Tool`). */
export interface McpServerTool {
  /** The tool's name on its server. */
  name: string;
  /** What it does. */
  description?: string;
  /** Its arguments. */
  inputSchema: McpToolInputSchema;
  /** Any other field (`title`, `annotations`, `outputSchema`, `_meta`, …). */
  [field: string]: unknown;
}

/** One item of a tool call's content: `text`, `image`, `audio`, `resource` or `resource_link`. */
export interface McpContent {
  /** The kind of content. */
  type: string;
  /** The text, for `text` items. */
  text?: string;
  /** The MIME type, for `image` and `audio` items. */
  mimeType?: string;
  /** The base64 data, for `image` and `audio` items. */
  data?: string;
  /** Any other field of the item. */
  [field: string]: unknown;
}

/** What a tool call returns. */
export interface McpCallToolResult {
  /** The content, in order. */
  content: McpContent[];
  /** True when the tool reported an error (the call itself succeeded). */
  isError?: boolean;
  /** Structured output, when the tool declares an output schema. */
  structuredContent?: Record<string, unknown>;
  /** Any other field of the result (`_meta`, …). */
  [field: string]: unknown;
}
