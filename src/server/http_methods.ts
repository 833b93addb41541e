/**
 * `http/request`: an HTTP request the executor makes for its client, so
 * that a client can reach what only the executor's network reaches (a
 * streamable-HTTP MCP server next to it). Buffered: the body comes in the
 * result. Streamed: the result carries the status and headers, then the
 * body follows as `http/request/bodyDelta` notifications, in order, the last
 * with `done: true` (and `error` when the body broke off).
 *
 * @module
 */

import { INTERNAL_ERROR, INVALID_PARAMS, RpcError } from "../protocol/errors.ts";
import { notificationText } from "../protocol/jsonrpc.ts";
import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { HttpRequest } from "../protocol/schemas.ts";
import {
  type ConnectionContext,
  ResponseThen,
  type SessionMethod,
  sessionMethod,
} from "./methods.ts";

/** Longest a request may take when it names no `timeoutMs` (and the most it may name). */
export const MAX_HTTP_REQUEST_MS = 10 * 60_000;
/** Largest buffered response body; larger ones need `streamResponse`. */
export const MAX_BUFFERED_BODY_BYTES = 32 * 1024 * 1024;
/** Most bytes in one `http/request/bodyDelta` notification. */
const DELTA_BYTES = 256 * 1024;

type Header = { name: string; value: string };

/** Content codings fetch decodes by itself (unless the request asked for `identity`). */
const DECODED_CODINGS = new Set(["gzip", "x-gzip", "deflate", "br"]);

/**
 * A response's headers as the client gets them. When fetch has decoded the
 * body, `content-encoding` and `content-length` describe bytes the client
 * never sees: they are left out, as the reference leaves them out.
 */
function headerList(response: Response, request: Headers): Header[] {
  const coding = response.headers.get("content-encoding")?.trim().toLowerCase();
  const decoded = coding !== undefined && DECODED_CODINGS.has(coding) &&
    request.get("accept-encoding")?.trim().toLowerCase() !== "identity";
  const list: Header[] = [];
  for (const [name, value] of response.headers) {
    if (decoded && (name === "content-encoding" || name === "content-length")) continue;
    list.push({ name, value });
  }
  return list;
}

/** Checks the URL: absolute `http://` or `https://`, else -32602. */
function checkUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RpcError(
      INVALID_PARAMS,
      `http/request url must be an absolute URL, got ${JSON.stringify(url)}`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new RpcError(
      INVALID_PARAMS,
      `http/request only supports http and https URLs, got ${parsed.protocol.slice(0, -1)}`,
    );
  }
  return parsed;
}

/** Sends the request; the signal covers the whole exchange, body included. */
async function send(
  request: HttpRequest,
  signal: AbortSignal,
): Promise<{ response: Response; headers: Header[] }> {
  const url = checkUrl(request.url);
  const headers = new Headers();
  try {
    for (const { name, value } of request.headers ?? []) headers.append(name, value);
  } catch (error) {
    throw new RpcError(INVALID_PARAMS, `http/request headers: ${(error as Error).message}`);
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method.toUpperCase(),
      headers,
      body: request.bodyBase64 as Uint8Array<ArrayBuffer> | null | undefined,
      // Redirects only when asked: a request names where it goes (the reference follows by default).
      redirect: request.redirectPolicy === "follow" ? "follow" : "manual",
      signal,
    });
  } catch (error) {
    throw new RpcError(INTERNAL_ERROR, `http/request failed: ${reason(error, signal)}`);
  }
  return { response, headers: headerList(response, headers) };
}

function reason(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const cause = signal.reason;
    if (cause instanceof DOMException && cause.name === "TimeoutError") return "timed out";
    return cause === CANCELLED ? "cancelled by the client" : "the connection to the client ended";
  }
  if (!(error instanceof Error)) return String(error);
  // fetch's own message is "fetch failed"; what failed (a refused connection, DNS) is its cause.
  const cause = error.cause instanceof Error ? error.cause.message : null;
  return cause === null ? error.message : `${error.message}: ${cause}`;
}

/** Reads a whole body, refusing one over {@link MAX_BUFFERED_BODY_BYTES}. */
async function readBody(response: Response, signal: AbortSignal): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const part of response.body ?? []) {
      size += part.byteLength;
      if (size > MAX_BUFFERED_BODY_BYTES) {
        await response.body?.cancel().catch(() => {});
        throw new RpcError(
          INTERNAL_ERROR,
          `http/request response body exceeds ${MAX_BUFFERED_BODY_BYTES} bytes: ask for streamResponse`,
        );
      }
      parts.push(part);
    }
  } catch (error) {
    if (error instanceof RpcError) throw error;
    throw new RpcError(
      INTERNAL_ERROR,
      `http/request failed reading the body: ${reason(error, signal)}`,
    );
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

/**
 * Sends a streamed body as notifications (each ≤ 256 KiB, waiting while the
 * connection's queue is full), then the final one.
 */
async function streamBody(
  response: Response,
  requestId: string,
  connection: ConnectionContext,
  signal: AbortSignal,
): Promise<void> {
  const id = JSON.stringify(requestId);
  let seq = 0;
  const delta = (bytes: Uint8Array, done: boolean, error: string | null) => {
    connection.notify(notificationText(
      Method.httpRequestBodyDelta,
      `{"requestId":${id},"seq":${++seq},"deltaBase64":"${bytes.toBase64()}","done":${done},"error":${
        JSON.stringify(error)
      }}`,
    ));
  };
  let error: string | null = null;
  try {
    for await (const part of response.body ?? []) {
      for (let at = 0; at < part.byteLength; at += DELTA_BYTES) {
        await connection.drained();
        if (signal.aborted) throw signal.reason;
        delta(part.subarray(at, at + DELTA_BYTES), false, null);
      }
    }
  } catch (cause) {
    error = reason(cause, signal);
  } finally {
    connection.httpStreams.delete(requestId);
  }
  if (!connection.signal.aborted) delta(new Uint8Array(0), true, error);
}

/** Why a stream was aborted by `http/request/cancel`. */
const CANCELLED = new Error("cancelled");

/** Handlers of the `http/*` methods, by name. */
export const httpMethods: Record<string, SessionMethod> = {
  /** Stops a streamed body early; its last notification says `cancelled by the client`. */
  [Method.httpRequestCancel]: sessionMethod({
    family: "http",
    params: () => schemas.httpCancelParams,
    run(p, { connection }) {
      connection.httpStreams.get(p.requestId)?.abort(CANCELLED);
      return {};
    },
  }),

  [Method.httpRequest]: sessionMethod({
    family: "http",
    params: () => schemas.httpRequestParams,
    async run(p, { connection }) {
      const timeoutMs = Math.min(p.timeoutMs ?? MAX_HTTP_REQUEST_MS, MAX_HTTP_REQUEST_MS);
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(new DOMException("timed out", "TimeoutError")),
        timeoutMs,
      );
      const cancel = new AbortController();
      const signal = AbortSignal.any([connection.signal, deadline.signal, cancel.signal]);
      if (!p.streamResponse) {
        try {
          const { response, headers } = await send(p, signal);
          const body = await readBody(response, signal);
          return {
            status: response.status,
            headers,
            bodyBase64: body.toBase64(),
          };
        } finally {
          clearTimeout(timer);
        }
      }
      if (connection.httpStreams.has(p.requestId)) {
        throw new RpcError(
          INVALID_PARAMS,
          `http/request streamResponse requestId \`${p.requestId}\` is already active`,
        );
      }
      connection.httpStreams.set(p.requestId, cancel);
      let response: Response;
      let headers: Header[];
      try {
        ({ response, headers } = await send(p, signal));
      } catch (error) {
        connection.httpStreams.delete(p.requestId);
        clearTimeout(timer);
        throw error;
      }
      const result = {
        status: response.status,
        headers,
        bodyBase64: "",
      };
      return new ResponseThen(result, () => {
        streamBody(response, p.requestId, connection, signal).finally(() => clearTimeout(timer));
      });
    },
  }),
};
