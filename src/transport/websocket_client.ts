/**
 * A lean RFC 6455 WebSocket client on top of `Deno.connect` that sets
 * `TCP_NODELAY`. Deno's built-in `WebSocket` client leaves Nagle's algorithm
 * on, so two small frames sent back to back arrive ~40 ms apart (Nagle plus
 * the peer's delayed ACK); a pipelining JSON-RPC client cannot afford that.
 *
 * @module
 */

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEAD_BYTES = 16 * 1024;
const INITIAL_BUF = 64 * 1024;
const MIN_READ = 16 * 1024;
/** Buffers larger than this are dropped once empty, so one huge message does not pin memory. */
const KEEP_BUF = 4 * 1024 * 1024;
const CLOSE_WAIT_MS = 1000;
const EMPTY = new Uint8Array(0);
const EMPTY32 = new Uint32Array(0);

const encoder = new TextEncoder();
// Deno's fatal TextDecoder is ~10x slower than the replacing one, so text is decoded with the
// replacing decoder and only re-checked by the fatal one if the result contains U+FFFD.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** A pool of random bytes for frame masks, refilled 1024 masks at a time. */
const randomPool = new Uint8Array(4096);
let randomPos = randomPool.length;
const scratch8 = new Uint8Array(4);
const scratch32 = new Uint32Array(scratch8.buffer);

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

/** The close of a connection, as handed to {@linkcode WebSocketClient.onclose}. */
export interface WebSocketCloseEvent {
  /** The close code (1005 when the peer sent none, 1006 when the connection just ended). */
  code: number;
  /** The close reason sent by the peer, or "". */
  reason: string;
  /** Whether a close frame was received from the peer. */
  wasClean: boolean;
}

/** An open client connection, as returned by {@linkcode connectWebSocket}. */
export interface WebSocketClient {
  /** Queue a text frame. Never throws synchronously once closed: it is a no-op after close (the owner learns about the close via onclose). */
  send(text: string): void;
  /** Queue a binary frame. */
  sendBinary(data: Uint8Array): void;
  /** Called for every complete inbound message: a string for text, Uint8Array for binary. */
  onmessage: ((data: string | Uint8Array) => void) | null;
  /** Called exactly once when the connection ends for any reason (close frame, EOF, error, local close). */
  onclose: ((event: WebSocketCloseEvent) => void) | null;
  /** Bytes queued but not yet written to the socket. */
  readonly bufferedAmount: number;
  /** Sends a close frame (default 1000), waits briefly (≤ 1 s) for the peer's close, then closes the socket. Resolves after onclose ran. Idempotent. */
  close(code?: number, reason?: string): Promise<void>;
  /** The negotiated subprotocol ("" if none). */
  readonly protocol: string;
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
    const client = new Client(conn, protocol, rest, options.maxMessageBytes ?? 64 * 1024 * 1024);
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

/** Frame header size for a payload of `n` bytes, including the 4-byte mask key. */
function headerSize(n: number): number {
  return (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4;
}

/** Decodes UTF-8, or returns null if it is invalid. */
function decodeText(bytes: Uint8Array): string | null {
  const text = decoder.decode(bytes);
  if (text.indexOf("\uFFFD") === -1) return text;
  try {
    return fatalDecoder.decode(bytes); // U+FFFD may be real text
  } catch {
    return null;
  }
}

function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999);
}

/**
 * XORs buf[start, end) with the 4-byte key stored at buf[start - 4, start),
 * a 32-bit word at a time over the aligned middle. `buf` must start at offset 0
 * of its ArrayBuffer, and `buf32` must view that same buffer.
 */
function maskPayload(buf: Uint8Array, buf32: Uint32Array, start: number, end: number): void {
  const k = start - 4;
  let i = start;
  for (const head = Math.min(end, (start + 3) & ~3); i < head; i++) {
    buf[i] ^= buf[k + ((i - start) & 3)];
  }
  const wordsEnd = end & ~3;
  if (i < wordsEnd) {
    const r = i - start;
    for (let j = 0; j < 4; j++) scratch8[j] = buf[k + ((r + j) & 3)];
    const m = scratch32[0];
    let w = i >>> 2;
    const we = wordsEnd >>> 2;
    for (const we4 = we - 3; w < we4; w += 4) {
      buf32[w] ^= m;
      buf32[w + 1] ^= m;
      buf32[w + 2] ^= m;
      buf32[w + 3] ^= m;
    }
    for (; w < we; w++) buf32[w] ^= m;
    i = wordsEnd;
  }
  for (; i < end; i++) buf[i] ^= buf[k + ((i - start) & 3)];
}

class Client implements WebSocketClient {
  onmessage: ((data: string | Uint8Array) => void) | null = null;
  onclose: ((event: WebSocketCloseEvent) => void) | null = null;
  readonly protocol: string;
  #conn: Deno.Conn;
  #maxMessage: number;
  // Reading: #rbuf[#rstart, #rend) holds unparsed bytes; #want is the size of an incomplete frame.
  #rbuf: Uint8Array;
  #rstart = 0;
  #rend: number;
  #want = 0;
  #fragOp = 0;
  #frags: Uint8Array[] = [];
  #fragLen = 0;
  // Writing: frames are encoded into #out; the writer swaps it with #spare and writes it whole.
  #out = EMPTY;
  #out32 = EMPTY32;
  #outLen = 0;
  #spare = EMPTY;
  #spare32 = EMPTY32;
  #inflight = 0;
  #writing: Promise<void> | null = null;
  // Closing.
  #closeSent = false;
  #closeCalled = false;
  #connClosed = false;
  #closeInfo: WebSocketCloseEvent | null = null;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #done = Promise.withResolvers<void>();

  constructor(conn: Deno.Conn, protocol: string, rest: Uint8Array, maxMessage: number) {
    this.#conn = conn;
    this.protocol = protocol;
    this.#maxMessage = maxMessage;
    this.#rbuf = new Uint8Array(Math.max(INITIAL_BUF, rest.length));
    this.#rbuf.set(rest);
    this.#rend = rest.length;
    this.#run(rest.length > 0);
  }

  get bufferedAmount(): number {
    return this.#outLen + this.#inflight;
  }

  send(text: string): void {
    if (!this.#closeSent && this.#closeInfo === null) this.#frame(1, text);
  }

  sendBinary(data: Uint8Array): void {
    if (!this.#closeSent && this.#closeInfo === null) this.#frame(2, data);
  }

  close(code = 1000, reason = ""): Promise<void> {
    if (this.#closeCalled) return this.#done.promise;
    if (!Number.isInteger(code) || !isValidCloseCode(code)) {
      return Promise.reject(
        new RangeError(`Cannot close the WebSocket with code ${code}: use 1000 or 3000-4999`),
      );
    }
    if (encoder.encode(reason).length > 123) {
      return Promise.reject(
        new RangeError(
          "Cannot close the WebSocket: the reason exceeds 123 UTF-8 bytes; shorten it",
        ),
      );
    }
    this.#closeCalled = true;
    if (this.#closeInfo === null) {
      if (!this.#closeSent) this.#sendClose(code, reason);
      this.#closeTimer = setTimeout(() => this.#abort(), CLOSE_WAIT_MS);
    }
    return this.#done.promise;
  }

  /** Drives the connection: reads until it ends, then flushes, closes the socket and reports. */
  async #run(deferStart: boolean): Promise<void> {
    try {
      // Bytes that came with the 101 must wait until the owner has set onmessage.
      if (deferStart) await new Promise((resolve) => setTimeout(resolve, 0));
      await this.#readLoop();
    } catch {
      // The read failed: reset by the peer, or the socket was closed by #abort.
    }
    const info = this.#closeInfo ??= { code: 1006, reason: "", wasClean: false };
    if (this.#writing !== null && !this.#connClosed) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise((resolve) => timer = setTimeout(resolve, CLOSE_WAIT_MS));
      await Promise.race([this.#writing, timeout]);
      clearTimeout(timer);
    }
    this.#closeConn();
    await this.#writing;
    clearTimeout(this.#closeTimer);
    this.#outLen = 0;
    this.#frags = [];
    this.#rbuf = this.#out = this.#spare = EMPTY;
    this.#out32 = this.#spare32 = EMPTY32;
    try {
      this.onclose?.(info);
    } catch (err) {
      reportError(err);
    }
    this.#done.resolve();
  }

  async #readLoop(): Promise<void> {
    while (this.#parse()) {
      const used = this.#rend - this.#rstart;
      if (used === 0) {
        this.#rstart = this.#rend = 0;
        if (this.#rbuf.length > KEEP_BUF) this.#rbuf = new Uint8Array(INITIAL_BUF);
      }
      const need = Math.max(this.#want, used + MIN_READ);
      if (this.#rbuf.length - this.#rstart < need) {
        if (this.#rbuf.length >= need) {
          this.#rbuf.copyWithin(0, this.#rstart, this.#rend);
        } else {
          const grown = new Uint8Array(Math.max(need, this.#rbuf.length * 2));
          grown.set(this.#rbuf.subarray(this.#rstart, this.#rend));
          this.#rbuf = grown;
        }
        this.#rstart = 0;
        this.#rend = used;
      }
      const n = await this.#conn.read(this.#rbuf.subarray(this.#rend));
      if (n === null) return;
      this.#rend += n;
    }
  }

  /** Handles every complete frame in the read buffer; false once the connection is ending. */
  #parse(): boolean {
    const b = this.#rbuf;
    const end = this.#rend;
    this.#want = 0;
    while (this.#closeInfo === null) {
      const p = this.#rstart;
      const avail = end - p;
      if (avail < 2) break;
      const b0 = b[p], b1 = b[p + 1], op = b0 & 0x0f, fin = (b0 & 0x80) !== 0;
      let len = b1 & 0x7f, h = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = (b[p + 2] << 8) | b[p + 3];
        h = 4;
      } else if (len === 127) {
        if (avail < 10) break;
        const hi = ((b[p + 2] << 24) | (b[p + 3] << 16) | (b[p + 4] << 8) | b[p + 5]) >>> 0;
        if (hi > 0x1fffff) return this.#fail(1009, "message too big");
        len = hi * 2 ** 32 +
          (((b[p + 6] << 24) | (b[p + 7] << 16) | (b[p + 8] << 8) | b[p + 9]) >>> 0);
        h = 10;
      }
      if ((b0 & 0x70) !== 0) return this.#fail(1002, "reserved bits set");
      if ((b1 & 0x80) !== 0) return this.#fail(1002, "masked server frame");
      if (op >= 8) {
        if (op > 10) return this.#fail(1002, "unknown opcode");
        if (!fin || len > 125) return this.#fail(1002, "bad control frame");
      } else if (op > 2) {
        return this.#fail(1002, "unknown opcode");
      } else if ((op === 0) === (this.#fragOp === 0)) {
        return this.#fail(1002, "unexpected continuation");
      } else if ((op === 0 ? this.#fragLen : 0) + len > this.#maxMessage) {
        return this.#fail(1009, "message too big");
      }
      if (avail < h + len) {
        this.#want = h + len;
        break;
      }
      const s = p + h, e = s + len;
      this.#rstart = e;
      if (op === 1 || op === 2) {
        if (fin) {
          this.#deliver(op, b, s, e, false);
        } else {
          this.#fragOp = op;
          this.#frags.push(b.slice(s, e));
          this.#fragLen = len;
        }
      } else if (op === 0) {
        this.#frags.push(b.slice(s, e));
        this.#fragLen += len;
        if (fin) {
          const msg = new Uint8Array(this.#fragLen);
          let off = 0;
          for (const part of this.#frags) {
            msg.set(part, off);
            off += part.length;
          }
          const fragOp = this.#fragOp;
          this.#fragOp = this.#fragLen = 0;
          this.#frags = [];
          this.#deliver(fragOp, msg, 0, msg.length, true);
        }
      } else if (op === 8) {
        this.#onCloseFrame(b, s, e);
      } else if (op === 9 && !this.#closeSent) {
        this.#frame(10, b.subarray(s, e));
      }
    }
    return this.#closeInfo === null;
  }

  #deliver(op: number, b: Uint8Array, s: number, e: number, owned: boolean): void {
    const data = op === 2 ? (owned ? b : b.slice(s, e)) : decodeText(b.subarray(s, e));
    if (data === null) return void this.#fail(1007, "invalid UTF-8");
    try {
      this.onmessage?.(data);
    } catch (err) {
      reportError(err);
    }
  }

  #onCloseFrame(b: Uint8Array, s: number, e: number): void {
    let code = 1005, reason = "";
    if (e - s >= 2) {
      code = (b[s] << 8) | b[s + 1];
      if (!isValidCloseCode(code)) return void this.#fail(1002, "invalid close code");
      const text = decodeText(b.subarray(s + 2, e));
      if (text === null) return void this.#fail(1007, "invalid UTF-8 in close reason");
      reason = text;
    } else if (e - s === 1) {
      return void this.#fail(1002, "bad close frame");
    }
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#frame(8, code === 1005 ? EMPTY : b.subarray(s, s + 2));
    }
    this.#closeInfo = { code, reason, wasClean: true };
  }

  /** Fails the connection: sends a close frame with `code` and ends it. */
  #fail(code: number, reason: string): false {
    if (!this.#closeSent) this.#sendClose(code, reason);
    this.#closeInfo ??= { code, reason, wasClean: false };
    return false;
  }

  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    const text = encoder.encode(reason);
    const payload = new Uint8Array(2 + text.length);
    payload[0] = code >>> 8;
    payload[1] = code & 0xff;
    payload.set(text, 2);
    this.#frame(8, payload);
  }

  /** Ends the connection now (no close handshake): the pending read fails and #run finishes. */
  #abort(): void {
    this.#closeInfo ??= { code: 1006, reason: "", wasClean: false };
    this.#closeConn();
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Encodes one masked frame at the end of #out and makes sure the writer runs. */
  #frame(op: number, data: string | Uint8Array): void {
    const n = data.length;
    const guess = headerSize(n);
    const isText = typeof data === "string";
    const room = this.#outLen + (isText ? 14 + n * 3 : guess + n);
    if (room > this.#out.length) this.#grow(room);
    const buf = this.#out, pos = this.#outLen;
    let len = n, h = guess;
    if (isText) {
      // Encode assuming ASCII; UTF-8 is never shorter, so move right when the header grows.
      len = encoder.encodeInto(data, buf.subarray(pos + guess)).written;
      h = headerSize(len);
      if (h !== guess) buf.copyWithin(pos + h, pos + guess, pos + guess + len);
    } else {
      buf.set(data, pos + h);
    }
    buf[pos] = 0x80 | op;
    if (len < 126) {
      buf[pos + 1] = 0x80 | len;
    } else if (len < 65536) {
      buf[pos + 1] = 0xfe;
      buf[pos + 2] = len >>> 8;
      buf[pos + 3] = len & 0xff;
    } else {
      buf[pos + 1] = 0xff;
      const hi = Math.floor(len / 2 ** 32), lo = len >>> 0;
      for (let i = 0; i < 4; i++) {
        buf[pos + 2 + i] = hi >>> (24 - 8 * i);
        buf[pos + 6 + i] = lo >>> (24 - 8 * i);
      }
    }
    if (randomPos === randomPool.length) {
      crypto.getRandomValues(randomPool);
      randomPos = 0;
    }
    for (let i = pos + h - 4; i < pos + h; i++) buf[i] = randomPool[randomPos++];
    maskPayload(buf, this.#out32, pos + h, pos + h + len);
    this.#outLen = pos + h + len;
    this.#writing ??= this.#writeLoop();
  }

  #grow(size: number): void {
    const grown = new Uint8Array((Math.max(size, this.#out.length * 2, MIN_READ) + 3) & ~3);
    grown.set(this.#out.subarray(0, this.#outLen));
    this.#out = grown;
    this.#out32 = new Uint32Array(grown.buffer);
  }

  /** The single writer: writes everything queued, one coalesced buffer per round. */
  async #writeLoop(): Promise<void> {
    await undefined; // let frames queued in the same tick join the first write
    try {
      while (this.#outLen > 0 && !this.#connClosed) {
        const buf = this.#out, buf32 = this.#out32, len = this.#outLen;
        this.#out = this.#spare;
        this.#out32 = this.#spare32;
        this.#spare = EMPTY;
        this.#spare32 = EMPTY32;
        this.#outLen = 0;
        this.#inflight = len;
        for (let off = 0; off < len; this.#inflight = len - off) {
          off += await this.#conn.write(buf.subarray(off, len));
        }
        if (buf.length <= KEEP_BUF) {
          this.#spare = buf;
          this.#spare32 = buf32;
        }
      }
    } catch {
      this.#abort();
    } finally {
      this.#inflight = 0;
      this.#writing = null;
    }
  }
}
