/**
 * The edge of a connection: each inbound message, JSON text or a binary
 * write frame, decoded into one {@link Call} shape, or into the error to
 * answer it with. Past this point a `process/write` is a `process/write`,
 * whatever encoding it came in.
 *
 * @module
 */

import { INVALID_REQUEST, PARSE_ERROR } from "../protocol/errors.ts";
import type { ErrorObject, RequestId } from "../protocol/jsonrpc.ts";
import {
  decodeWriteFrame,
  WRITE_FRAME_KIND,
  writeFrameRequestId,
} from "../protocol/binary_write.ts";
import { Method } from "../protocol/methods.ts";

/** A request (with an `id`) or a notification (without), decoded. */
export interface Call {
  /** The request id; undefined for a notification. */
  id: RequestId | undefined;
  /** The method. */
  method: string;
  /** The params: JSON values, or a binary frame's decoded fields (bytes included). */
  params: unknown;
}

/** An inbound message that cannot be run: answer it with this error. */
export interface Rejected {
  /** The id to answer (null when it could not be read). */
  id: RequestId;
  /** The error. */
  error: ErrorObject;
}

/** What an inbound message is: a call, a rejection, or nothing to act on (a response). */
export type Inbound = { call: Call } | { rejected: Rejected } | null;

function rejected(id: RequestId, code: number, message: string): Inbound {
  return { rejected: { id, error: { code, message } } };
}

/** Decodes a JSON-RPC text message (`peer` names the sender in errors). */
export function decodeText(text: string, peer: string): Inbound {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (error) {
    return rejected(
      null,
      PARSE_ERROR,
      `failed to parse JSON-RPC message from ${peer}: ${(error as Error).message}`,
    );
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    return rejected(
      null,
      INVALID_REQUEST,
      Array.isArray(message)
        ? "batch requests are not supported: send one JSON-RPC message per frame"
        : "a JSON-RPC message must be an object",
    );
  }
  const { id, method, params } = message as { id?: unknown; method?: unknown; params?: unknown };
  // `"id": null` is a (discouraged) request that still gets a response with id null.
  const validId = (typeof id === "number" && Number.isFinite(id)) || typeof id === "string" ||
    ("id" in message && id === null);
  if (id !== undefined && !validId) {
    return rejected(null, INVALID_REQUEST, "id must be a number or a string");
  }
  if (typeof method !== "string") {
    if (validId && !("result" in message) && !("error" in message)) {
      return rejected(id as RequestId, INVALID_REQUEST, "method must be a string");
    }
    // A response: the executor never calls the client, so there is nothing to match.
    return null;
  }
  return { call: { id: validId ? id as RequestId : undefined, method, params } };
}

/** Binary frames that are not write frames are JSON text (bad UTF-8 becomes U+FFFD, then a parse error). */
const binaryText = new TextDecoder();

/**
 * Decodes a binary message: a `process/write` frame when the client offered
 * them (`binaryWrites`), else (as before that extension) UTF-8 JSON text.
 */
export function decodeBinary(
  bytes: Uint8Array,
  options: { binaryWrites: boolean; peer: string },
): Inbound {
  if (!options.binaryWrites || bytes[0] !== WRITE_FRAME_KIND) {
    return decodeText(binaryText.decode(bytes), options.peer);
  }
  const frame = decodeWriteFrame(bytes);
  if (frame === null) {
    return rejected(
      writeFrameRequestId(bytes),
      INVALID_REQUEST,
      "malformed binary process/write frame",
    );
  }
  const { processId, data, closeStdin, writeId } = frame;
  return {
    call: {
      id: frame.requestId ?? undefined,
      method: Method.processWrite,
      params: { processId, chunk: data, closeStdin, writeId },
    },
  };
}
