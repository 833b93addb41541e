/**
 * The framing half of the WebSocket client (`websocket_client.ts` does the
 * handshake): RFC 6455 frames over a connected socket, and the connection's
 * interface.
 *
 * Long (~500 lines) on purpose: RFC 6455 framing is one state machine
 * (reading, writing, fragments, control frames, the close handshake) over one
 * buffer; the handshake is apart, in `websocket_client.ts`.
 *
 * @module
 */

import { settlesWithin } from "../util/deadline.ts";

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

/** The close of a connection, as handed to {@linkcode WebSocketClient.onclose}. */
export interface WebSocketCloseEvent {
  /** The close code (1005 when the peer sent none, 1006 when the connection just ended). */
  code: number;
  /** The close reason sent by the peer, or "". */
  reason: string;
  /** Whether a close frame was received from the peer. */
  wasClean: boolean;
}

/** An open client connection, as `connectWebSocket` returns it. */
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

/** How a {@link WebSocketConnection} runs. */
export interface WebSocketConnectionOptions {
  /** The negotiated subprotocol ("" if none). */
  protocol: string;
  /** Bytes that came with the 101 answer. */
  rest: Uint8Array;
  /** Largest inbound message (after reassembly). */
  maxMessageBytes: number;
  /**
   * Dead-peer detection: every this many ms, a connection that received
   * nothing since the last tick pings the server; after three such ticks in
   * a row (silence of 10-15 s at 5 s) it gives the link up: onclose with
   * code 1006 and a reason saying so. 0 or absent: never.
   */
  pingIntervalMs?: number;
}

/** Silent ticks after which the peer is taken for gone (the first one sends a ping). */
const DEAD_AFTER_TICKS = 3;

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

/**
 * An open connection after the handshake: frames out (masked, coalesced
 * into one write per round), frames in (reassembled, validated), and the
 * close handshake.
 */
export class WebSocketConnection implements WebSocketClient {
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
  // Dead-peer detection: reads so far, the count at the last tick, silent ticks in a row.
  #reads = 0;
  #readsAtTick = 0;
  #silentTicks = 0;
  #pingTimer: ReturnType<typeof setInterval> | undefined;

  /** Takes over a connected socket. */
  constructor(conn: Deno.Conn, options: WebSocketConnectionOptions) {
    const { rest } = options;
    this.#conn = conn;
    this.protocol = options.protocol;
    this.#maxMessage = options.maxMessageBytes;
    this.#rbuf = new Uint8Array(Math.max(INITIAL_BUF, rest.length));
    this.#rbuf.set(rest);
    this.#rend = rest.length;
    const interval = options.pingIntervalMs ?? 0;
    if (interval > 0) this.#pingTimer = setInterval(() => this.#tick(interval), interval);
    this.#run(rest.length > 0);
  }

  /** One dead-peer detection tick: ping a silent server, give up on one silent too long. */
  #tick(interval: number): void {
    if (this.#reads !== this.#readsAtTick) {
      this.#readsAtTick = this.#reads;
      this.#silentTicks = 0;
      return;
    }
    this.#silentTicks++;
    if (this.#silentTicks >= DEAD_AFTER_TICKS) {
      clearInterval(this.#pingTimer);
      this.#closeInfo ??= {
        code: 1006,
        reason: `the server answered nothing for ${(this.#silentTicks * interval) / 1000} s ` +
          `(not even pings): the link is dead`,
        wasClean: false,
      };
      this.#closeConn();
    } else if (this.#silentTicks === 1 && !this.#closeSent) {
      this.#frame(9, EMPTY);
    }
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
    clearInterval(this.#pingTimer);
    const info = this.#closeInfo ??= { code: 1006, reason: "", wasClean: false };
    if (this.#writing !== null && !this.#connClosed) {
      await settlesWithin(this.#writing, CLOSE_WAIT_MS);
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
      this.#reads++;
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
