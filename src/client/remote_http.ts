/**
 * `fetch` through an executor (`http/request` with a streamed body): a
 * request goes out from the executor's network, its response comes back as
 * a standard `Response` whose body arrives as `http/request/bodyDelta`
 * notifications. Hand it to anything that takes a `fetch` (the MCP SDK's
 * streamable-HTTP transport does) to reach a server only the executor sees.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { RpcClient } from "../rpc/rpc_client.ts";

/** A `fetch` over an executor. */
export type RemoteFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Statuses whose response has no body (the `Response` constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

interface BodyStream {
  controller: ReadableStreamDefaultController<Uint8Array> | null;
  /** Deltas that arrived before the stream was made (right after the response). */
  early: { bytes: Uint8Array; done: boolean; error: string | null }[];
  /** Why the body can no longer arrive (the connection was lost), once it cannot. */
  failure: string | null;
}

/** The HTTP side of one executor connection: streams by `requestId`. */
export class RemoteHttp {
  readonly #rpc: RpcClient;
  readonly #cancellable: boolean;
  readonly #streams = new Map<string, BodyStream>();

  /**
   * Wraps a connected RPC client. `cancellable`: the executor takes
   * `http/request/cancel` (an execbridge extension) to stop a body early.
   */
  constructor(rpc: RpcClient, options: { cancellable: boolean }) {
    this.#rpc = rpc;
    this.#cancellable = options.cancellable;
  }

  /** A piece of a streamed body (the `http/request/bodyDelta` notification's params). */
  deliver(params: unknown): void {
    const delta = schemas.results.bodyDelta.safeParse(params);
    if (!delta.success) return;
    const { requestId, deltaBase64: bytes, done, error } = delta.data;
    const stream = this.#streams.get(requestId);
    if (stream === undefined) return;
    if (stream.controller === null) {
      stream.early.push({ bytes, done, error: error ?? null });
      return;
    }
    this.#push(requestId, stream.controller, { bytes, done, error: error ?? null });
  }

  /** The connection is gone: every open body fails with `message`. */
  fail(message: string): void {
    for (const [id, stream] of this.#streams) {
      this.#streams.delete(id);
      stream.failure = message;
      try {
        stream.controller?.error(new Error(message));
      } catch {
        // Already closed by its reader.
      }
    }
  }

  /** `fetch`, made by the executor. */
  readonly fetch: RemoteFetch = async (input, init) => {
    const request = new Request(input, init);
    const body = request.body === null ? null : new Uint8Array(await request.arrayBuffer());
    const requestId = `http-${crypto.randomUUID()}`;
    const stream: BodyStream = { controller: null, early: [], failure: null };
    this.#streams.set(requestId, stream);
    const headers: { name: string; value: string }[] = [];
    request.headers.forEach((value, name) => headers.push({ name, value }));
    let raw: unknown;
    try {
      raw = await this.#rpc.call(Method.httpRequest, {
        method: request.method,
        url: request.url,
        headers,
        bodyBase64: body === null ? null : body.toBase64(),
        redirectPolicy: request.redirect === "follow" ? "follow" : "stop",
        requestId,
        streamResponse: true,
      });
    } catch (error) {
      this.#streams.delete(requestId);
      throw new TypeError(
        `fetch ${request.url} through the executor failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (stream.failure !== null) {
      // The head came (after a reconnect) but the body's notifications went with the old link.
      throw new TypeError(
        `fetch ${request.url} through the executor failed: its body was lost with the connection: ${stream.failure}`,
      );
    }
    const response = schemas.results.httpResponse.parse(raw);
    const responseHeaders = new Headers();
    for (const { name, value } of response.headers) responseHeaders.append(name, value);
    if (NULL_BODY.has(response.status)) {
      this.#cancel(requestId);
      return new Response(null, { status: response.status, headers: responseHeaders });
    }
    const signal = request.signal;
    const readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream.controller = controller;
        for (const delta of stream.early.splice(0)) this.#push(requestId, controller, delta);
        signal.addEventListener("abort", () => {
          this.#cancel(requestId);
          try {
            controller.error(signal.reason);
          } catch {
            // Already closed.
          }
        }, { once: true });
      },
      cancel: () => this.#cancel(requestId),
    });
    return new Response(readable, { status: response.status, headers: responseHeaders });
  };

  #push(
    requestId: string,
    controller: ReadableStreamDefaultController<Uint8Array>,
    delta: { bytes: Uint8Array; done: boolean; error: string | null },
  ): void {
    try {
      if (delta.bytes.byteLength > 0) controller.enqueue(delta.bytes);
      if (delta.error !== null) {
        this.#streams.delete(requestId);
        controller.error(new TypeError(`the response body broke off: ${delta.error}`));
      } else if (delta.done) {
        this.#streams.delete(requestId);
        controller.close();
      }
    } catch {
      // The reader went away (cancelled): nothing to deliver to.
    }
  }

  /** Stops a body early: forgotten here, and the executor told when it can be. */
  #cancel(requestId: string): void {
    if (!this.#streams.delete(requestId)) return;
    if (this.#cancellable && this.#rpc.disconnected === null) {
      this.#rpc.call(Method.httpRequestCancel, { requestId }).catch(() => {});
    }
  }
}
