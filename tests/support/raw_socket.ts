/**
 * A deliberately primitive WebSocket peer over a raw TCP socket, for tests
 * that need what a real client never does: custom Host/Origin headers,
 * arbitrary bytes, binary and oversized frames, and never reading.
 */

/** A raw connection after (or instead of) the upgrade. */
export interface RawSocket {
  conn: Deno.TcpConn;
  /** HTTP status of the upgrade answer. */
  status: number;
  /** The raw answer head. */
  head: string;
}

const encoder = new TextEncoder();

/** Sends an upgrade request with exactly `headers` (plus the WebSocket ones) and reads the status. */
export async function rawUpgrade(
  port: number,
  headers: Record<string, string>,
  path = "/",
): Promise<RawSocket> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [
    `GET ${path} HTTP/1.1`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  await conn.write(encoder.encode(lines.join("\r\n")));
  const buffer = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    head += new TextDecoder().decode(buffer.subarray(0, n));
  }
  const status = Number(head.split(" ")[1]);
  return { conn, status, head };
}

/** Encodes one masked client frame (opcode 1 text, 2 binary). */
export function frame(payload: Uint8Array | string, opcode = 1): Uint8Array {
  const data = typeof payload === "string" ? encoder.encode(payload) : payload;
  const length = data.byteLength;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = new Uint8Array(header + 4 + length);
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = 0x80 | length;
  } else if (length < 65536) {
    out[1] = 0x80 | 126;
    new DataView(out.buffer).setUint16(2, length);
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(length));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, header);
  for (let i = 0; i < length; i++) out[header + 4 + i] = data[i] ^ mask[i & 3];
  return out;
}

/** Writes all bytes. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await conn.write(data.subarray(offset));
}

/** A host:port Host header value for the executor URL. */
export function portOf(url: string): number {
  return Number(new URL(url.replace(/^wss?:/, "http:")).port);
}
