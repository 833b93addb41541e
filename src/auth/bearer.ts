/**
 * Bearer-token checks for WebSocket upgrades.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";

function digest(value: string): Uint8Array {
  return createHash("sha256").update(value).digest();
}

/**
 * True when an `Authorization` header carries exactly `Bearer <token>`.
 * Compares SHA-256 digests in constant time, so neither the token's content
 * nor its length leaks through timing.
 */
export function bearerMatches(header: string | null, token: string): boolean {
  if (header === null) return false;
  const match = /^Bearer[ ]+(.+)$/i.exec(header.trim());
  if (match === null) return false;
  return timingSafeEqual(digest(match[1]), digest(token));
}
