/**
 * Paths on the wire. The reference's current clients send every path as a
 * `file://` URI (`file:///home/me/a%20b`); older clients and execbridge's
 * own library send absolute native paths (`/home/me/a b`). The executor
 * takes both wherever a path goes and answers in the form it was asked in;
 * anything else (a relative path, another host, a query) is refused.
 *
 * @module
 */

/** A path from a request: the native absolute path, and whether it came as a URI. */
export interface WirePath {
  /** The absolute native path. */
  native: string;
  /** True when the request spelled it as a `file://` URI (answers use that form too). */
  uri: boolean;
}

/**
 * Reads a wire path. Returns the path, or a message saying why it is not
 * one (for a -32602 naming the field).
 */
export function parseWirePath(value: string): WirePath | { error: string } {
  if (value.startsWith("/")) {
    if (value.includes("\0")) return { error: "must not contain NUL" };
    return { native: value, uri: false };
  }
  if (!/^file:/i.test(value)) {
    return { error: `must be an absolute path or a file:// URI, got ${JSON.stringify(value)}` };
  }
  // file:///p, file://localhost/p, and the authority-less file:/p (RFC 8089).
  const match = /^file:(?:\/\/([^/?#]*))?(\/[^?#]*)$/i.exec(value);
  if (match === null) {
    return {
      error: `${JSON.stringify(value)} is not a file URI of an absolute path ` +
        "(file:///path, without a query or fragment)",
    };
  }
  const host = match[1] ?? "";
  if (host !== "" && host.toLowerCase() !== "localhost") {
    return {
      error: `${JSON.stringify(value)} names the host ${JSON.stringify(host)}: ` +
        "only local paths (no host, or localhost) are served",
    };
  }
  let native: string;
  try {
    native = decodeURIComponent(match[2]);
  } catch {
    return { error: `${JSON.stringify(value)} has an invalid percent-encoding (not UTF-8)` };
  }
  if (native.includes("\0")) return { error: "must not contain NUL (%00)" };
  return { native, uri: true };
}

/** Bytes left as they are in a URI path (RFC 3986 pchar and `/`); others are percent-encoded. */
const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const encoder = new TextEncoder();

/** A native absolute path as a `file://` URI (`/a b` → `file:///a%20b`). */
export function toFileUri(native: string): string {
  let out = "file://";
  for (const char of native) {
    if (PATH_SAFE.test(char)) {
      out += char;
    } else {
      for (const byte of encoder.encode(char)) {
        out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
      }
    }
  }
  return out;
}

/** A native path in the form a request used: a URI when it came as one. */
export function formatWirePath(native: string, asked: { uri: boolean }): string {
  return asked.uri ? toFileUri(native) : native;
}
