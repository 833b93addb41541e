/**
 * JSON-RPC error codes used by the executor, and the error class that carries
 * one from a handler to the wire (and from the wire back to the caller).
 *
 * @module
 */

/** The frame is not JSON. Sent with `id: null`. */
export const PARSE_ERROR: number = -32700;
/** Not initialized, second initialize, duplicate or unknown process id, a limit hit. */
export const INVALID_REQUEST: number = -32600;
/** Unknown method. */
export const METHOD_NOT_FOUND: number = -32601;
/** Params do not match the method's schema (empty argv, relative path…). */
export const INVALID_PARAMS: number = -32602;
/** Anything else that failed on the executor (spawn errors, I/O errors). */
export const INTERNAL_ERROR: number = -32603;
/** A filesystem path does not exist. */
export const NOT_FOUND: number = -32004;
/** The session to resume is attached to another connection. */
export const SESSION_ATTACHED: number = -32010;

/**
 * An error with a JSON-RPC code. Thrown by handlers to produce an error
 * response, and by the client when the executor answered with one.
 *
 * @example
 * ```ts
 * import { RpcError, INVALID_PARAMS } from "./errors.ts";
 * throw new RpcError(INVALID_PARAMS, "argv must not be empty");
 * ```
 */
export class RpcError extends Error {
  /** The JSON-RPC error code. */
  readonly code: number;
  /** Optional structured detail sent as `error.data`. */
  readonly data?: unknown;

  /** Creates an error with a code, a message and optional data. */
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }
}
