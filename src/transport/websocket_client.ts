/**
 * A lean RFC 6455 WebSocket client on top of `Deno.connect` that sets
 * `TCP_NODELAY`. Deno's built-in `WebSocket` client leaves Nagle's algorithm
 * on, so two small frames sent back to back arrive ~40 ms apart (Nagle plus
 * the peer's delayed ACK); a pipelining JSON-RPC client cannot afford that.
 *
 * @module
 */

import {
  type WebSocketClient,
  type WebSocketCloseEvent,
  WebSocketConnection,
} from "./websocket_connection.ts";

export type { WebSocketClient, WebSocketCloseEvent };

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEAD_BYTES = 16 * 1024;
const encoder = new TextEncoder();

/** Options for {@linkcode connectWebSocket}. */
export interface WebSocketClientOptions {
  /** Extra handshake headers, e.g. { Authorization: "Bearer x" }. */
  headers?: Record<string, string>;
  /** Sec-WebSocket-Protocol values to offer. */
  protocols?: string[];
  /** PEM CA certificates for wss:// (passed to Deno.startTls caCerts). */
  caCerts?: string[];
  /** Largest inbound message accepted (after reassembling fragments); default 64 MiB. Larger → close with 1009 and onclose. */
  maxMessageBytes?: number;
  /** Give up connecting + handshaking after this long; default 10000 ms. */
  connectTimeoutMs?: number;
  /** AbortSignal to cancel connecting. */
  signal?: AbortSignal;
  /**
   * Dead-peer detection once connected: ping a server silent this long, and
   * give the link up after three silent intervals in a row (onclose, code
   * 1006). Default 0: never.
   */
  pingIntervalMs?: number;
}

/**
 * Connecting failed: the TCP/TLS connection, the HTTP upgrade or its
 * validation. `status` is the HTTP status when the server answered with
 * something other than 101 (e.g. 401, 403), otherwise `null`.
 */
export class WebSocketHandshakeError extends Error {
  /** The HTTP status of a non-101 answer, or `null` when there was none. */
  readonly status: number | null;

  /** Creates the error; `status` is the HTTP status, if the server sent one. */
  constructor(message: string, status: number | null = null, options?: ErrorOptions) {
    super(message, options);
    this.name = "WebSocketHandshakeError";
    this.status = status;
  }
}

/**
 * Opens a WebSocket connection with `TCP_NODELAY` set. Rejects with a
 * {@linkcode WebSocketHandshakeError} when the connection or the upgrade
 * fails, or with `signal.reason` when `signal` aborts it.
 *
 * @example
 * ```ts
 * import { connectWebSocket } from "./websocket_client.ts";
 * const ws = await connectWebSocket("ws://127.0.0.1:8080/rpc", {
 *   headers: { Authorization: "Bearer secret" },
 * });
 * ws.onmessage = (data) => console.log(data);
 * ws.onclose = ({ code }) => console.log("closed", code);
 * ws.send('{"jsonrpc":"2.0","id":1,"method":"ping"}');
 * await ws.close();
 * ```
 */
export async function connectWebSocket(
  url: string | URL,
  options: WebSocketClientOptions = {},
): Promise<WebSocketClient> {
  const u = new URL(url);
  const secure = u.protocol === "wss:";
  if (!secure && u.protocol !== "ws:") {
    throw new TypeError(`Cannot connect a WebSocket to ${u.href}: use a ws:// or wss:// URL`);
  }
  // Leave the query out of error messages: it often carries tokens.
  const where = `${u.protocol}//${u.host}${u.pathname}`;
  const headerLines = handshakeHeaders(u, options);
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const signal = options.signal;
  signal?.throwIfAborted();

  const ac = new AbortController();
  const onAbort = () => ac.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => ac.abort("timeout"), timeoutMs);
  let tcp: Deno.TcpConn | undefined;
  let conn: Deno.Conn | undefined;
  const closeAll = () => {
    for (const c of [conn, tcp]) {
      try {
        c?.close();
      } catch { /* already closed, or consumed by startTls */ }
    }
  };
  ac.signal.addEventListener("abort", closeAll);
  try {
    const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
    const port = u.port ? Number(u.port) : secure ? 443 : 80;
    try {
      tcp = await Deno.connect({ hostname, port, signal: ac.signal });
    } catch (err) {
      if (ac.signal.aborted) throw err;
      throw new WebSocketHandshakeError(
        `WebSocket connection to ${where} failed: ${
          errorText(err)
        }; check that the server is running and the URL is right`,
        null,
        { cause: err },
      );
    }
    conn = tcp;
    tcp.setNoDelay(true);
    // Deno's TlsConn has no setNoDelay, so for wss:// connect plain TCP, set
    // TCP_NODELAY on it and upgrade it with startTls (the option stays on the socket).
    if (secure) conn = await Deno.startTls(tcp, { hostname, caCerts: options.caCerts });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const request = `GET ${u.pathname || "/"}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n${headerLines}\r\n`;
    await writeAll(conn, encoder.encode(request));
    const { head, rest } = await readHead(conn);
    const protocol = await checkResponse(head, key, options.protocols ?? [], where);
    const client = new WebSocketConnection(conn, {
      protocol,
      rest,
      maxMessageBytes: options.maxMessageBytes ?? 64 * 1024 * 1024,
      pingIntervalMs: options.pingIntervalMs,
    });
    conn = tcp = undefined; // owned by the client now
    return client;
  } catch (err) {
    closeAll();
    if (signal?.aborted) throw signal.reason;
    if (ac.signal.aborted) {
      throw new WebSocketHandshakeError(
        `WebSocket handshake with ${where} failed: timed out after ${timeoutMs} ms; check that the server is reachable or raise connectTimeoutMs`,
      );
    }
    if (err instanceof WebSocketHandshakeError) throw err;
    throw new WebSocketHandshakeError(
      `WebSocket handshake with ${where} failed: ${errorText(err)}`,
      null,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    ac.signal.removeEventListener("abort", closeAll);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function handshakeHeaders(u: URL, options: WebSocketClientOptions): string {
  const lines: string[] = [];
  if (options.protocols?.length) {
    lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(", ")}`);
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    lines.push(`${name}: ${value}`);
  }
  for (const line of lines) {
    if (/[\r\n\0]/.test(line)) {
      throw new TypeError(
        `Cannot connect to ${u.host}: header line ${
          JSON.stringify(line)
        } contains CR, LF or NUL; remove them`,
      );
    }
  }
  return lines.map((l) => l + "\r\n").join("");
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** Reads the HTTP response head; `rest` holds any bytes after it (the first frames). */
async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  let buf = new Uint8Array(4096);
  let len = 0;
  for (;;) {
    if (len === buf.length) {
      if (len >= MAX_HEAD_BYTES) {
        throw new Error(`the response head exceeds ${MAX_HEAD_BYTES} bytes`);
      }
      const grown = new Uint8Array(len * 2);
      grown.set(buf);
      buf = grown;
    }
    const n = await conn.read(buf.subarray(len));
    if (n === null) {
      throw new Error("the server closed the connection before answering the upgrade");
    }
    const from = Math.max(0, len - 3);
    len += n;
    for (let i = from; i + 3 < len; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
        return { head: new TextDecoder().decode(buf.subarray(0, i)), rest: buf.slice(i + 4, len) };
      }
    }
  }
}

/** Validates the 101 answer and returns the negotiated subprotocol. */
async function checkResponse(
  head: string,
  key: string,
  offered: string[],
  where: string,
): Promise<string> {
  const lines = head.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!status) {
    throw new Error(
      `the server did not answer with HTTP: ${JSON.stringify(lines[0].slice(0, 80))}`,
    );
  }
  const code = Number(status[1]);
  if (code !== 101) {
    throw new WebSocketHandshakeError(
      `WebSocket handshake with ${where} failed: HTTP ${code} ${status[2] ?? ""}`.trimEnd(),
      code,
    );
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new Error(`the 101 answer has "Upgrade: ${headers.get("upgrade") ?? ""}", not websocket`);
  }
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers.get("connection") ?? "")) {
    throw new Error(
      `the 101 answer has "Connection: ${headers.get("connection") ?? ""}", not Upgrade`,
    );
  }
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  if (
    headers.get("sec-websocket-accept") !== btoa(String.fromCharCode(...new Uint8Array(digest)))
  ) {
    throw new Error(
      "Sec-WebSocket-Accept does not match the key; the server is not a WebSocket endpoint",
    );
  }
  if (headers.has("sec-websocket-extensions")) {
    throw new Error(
      `the server enabled extensions it was not offered: ${
        headers.get("sec-websocket-extensions")
      }`,
    );
  }
  const protocol = headers.get("sec-websocket-protocol") ?? "";
  if (protocol && !offered.includes(protocol)) {
    throw new Error(
      `the server chose subprotocol "${protocol}", which was not offered (${offered.join(", ")})`,
    );
  }
  return protocol;
}
