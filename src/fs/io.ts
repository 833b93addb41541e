/**
 * Filesystem calls with their OS errors turned into `RpcError`s that name
 * the method and the path: NotFound is -32004, invalid input and denied
 * access -32600, anything else (not a directory, is a directory, exists…)
 * -32603, as the reference maps them.
 *
 * @module
 */

import { INTERNAL_ERROR, INVALID_REQUEST, NOT_FOUND, RpcError } from "../protocol/errors.ts";

/** Runs an fs call, turning what it throws into an `RpcError` about `method` and `path`. */
export async function io<T>(method: string, path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw toRpcError(method, path, err);
  }
}

/** Maps an OS error to an `RpcError` with message `"<method> <path>: <OS message>"`. */
export function toRpcError(method: string, path: string, err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  const message = `${method} ${path}: ${osMessage(err)}`;
  if (err instanceof Deno.errors.NotFound) return new RpcError(NOT_FOUND, message);
  if (
    err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.NotCapable ||
    err instanceof TypeError // Deno's class for invalid input (EINVAL, NUL in a path).
  ) {
    return new RpcError(INVALID_REQUEST, message);
  }
  return new RpcError(INTERNAL_ERROR, message);
}

/**
 * The OS part of an error message. Deno appends the operation and its paths
 * (`"No such file or directory (os error 2): readfile '/x'"`); that suffix is
 * dropped because the caller's message already names the method and path.
 */
export function osMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const match = /^([\s\S]*?): [a-z_]+ '[\s\S]*'$/.exec(err.message);
  return match ? match[1] : err.message;
}
