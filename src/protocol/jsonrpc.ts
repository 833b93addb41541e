/**
 * JSON-RPC 2.0 envelopes as text: the one place messages are assembled.
 * Each builder takes its payload already serialized (`params`, `result`),
 * so that a hot path (a worker's output notification, a read result built
 * as text) splices it in without parsing or stringifying it again.
 *
 * Everything execbridge sends carries `"jsonrpc":"2.0"`; what it receives
 * may omit it (the reference's clients do).
 *
 * @module
 */

/** A request id: a number or a string; null only in an error about an unreadable request. */
export type RequestId = number | string | null;

/** An error object of a JSON-RPC error response. */
export interface ErrorObject {
  /** The JSON-RPC error code. */
  code: number;
  /** What failed. */
  message: string;
  /** Structured detail, if any. */
  data?: unknown;
}

function idText(id: RequestId): string {
  return typeof id === "number" ? String(id) : JSON.stringify(id);
}

/** A request; `paramsJson` is the params' JSON text (omitted when undefined). */
export function requestText(id: RequestId, method: string, paramsJson?: string): string {
  const head = `{"jsonrpc":"2.0","id":${idText(id)},"method":${JSON.stringify(method)}`;
  return paramsJson === undefined ? head + "}" : `${head},"params":${paramsJson}}`;
}

/** A notification; `paramsJson` is the params' JSON text (omitted when undefined). */
export function notificationText(method: string, paramsJson?: string): string {
  const head = `{"jsonrpc":"2.0","method":${JSON.stringify(method)}`;
  return paramsJson === undefined ? head + "}" : `${head},"params":${paramsJson}}`;
}

/** A success response; `resultJson` is the result's JSON text. */
export function resultText(id: RequestId, resultJson: string): string {
  return `{"jsonrpc":"2.0","id":${idText(id)},"result":${resultJson}}`;
}

/** An error response. */
export function errorText(id: RequestId, error: ErrorObject): string {
  const body = error.data === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, data: error.data };
  return `{"jsonrpc":"2.0","id":${idText(id)},"error":${JSON.stringify(body)}}`;
}
