/**
 * Bearer-token checks for WebSocket upgrades.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Whether two byte strings are equal, in a time that depends only on the
 * length of `presented` (the client's): every byte is compared, and a
 * length difference is folded in, so neither the expected token's content
 * nor its length leaks through timing. (Without `node:crypto`, which costs
 * an executor ~4 MiB and ~15 ms at start: docs/performance.md.)
 */
function constantTimeEqual(presented: Uint8Array, expected: Uint8Array): boolean {
  let diff = presented.length ^ expected.length;
  const n = expected.length || 1;
  for (let i = 0; i < presented.length; i++) diff |= presented[i] ^ (expected[i % n] ?? 0);
  return diff === 0;
}

/**
 * True when an `Authorization` header carries exactly `Bearer <token>`,
 * compared in constant time.
 */
export function bearerMatches(header: string | null, token: string): boolean {
  if (header === null) return false;
  const match = /^Bearer[ ]+(.+)$/i.exec(header.trim());
  if (match === null) return false;
  return constantTimeEqual(encoder.encode(match[1]), encoder.encode(token));
}
