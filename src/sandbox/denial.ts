/**
 * Whether a sandboxed process's failure looks like the sandbox's doing, the
 * way the reference classifies it (`sandboxDenied` on `process/exited` and
 * `process/read`): a non-zero exit whose output names a typical denial, or
 * death by SIGSYS. Codex uses it to offer a rerun outside the sandbox.
 *
 * Imported by the process worker: no imports, evaluated once at exit over
 * the retained output, only for sandboxed processes that failed.
 *
 * @module
 */

/** Lower-case phrases that mark a denial in a failed command's output. */
const DENIAL_PHRASES = [
  "operation not permitted",
  "permission denied",
  "read-only file system",
  "seccomp",
  "sandbox",
  "landlock",
  "failed to write file",
];
/** 128 + SIGSYS: a seccomp filter killed the process. */
const SIGSYS_EXIT = 128 + 31;
/** Characters kept between chunks so that a phrase split across two is still found. */
const OVERLAP = 32;

/**
 * True when a sandboxed process that exited with `exitCode` was most likely
 * stopped by its sandbox, judged from its retained output `chunks`.
 */
export function likelySandboxDenied(exitCode: number, chunks: Iterable<Uint8Array>): boolean {
  if (exitCode === 0) return false;
  if (exitCode === SIGSYS_EXIT) return true;
  const decoder = new TextDecoder();
  let tail = "";
  for (const chunk of chunks) {
    const text = tail + decoder.decode(chunk, { stream: true }).toLowerCase();
    if (DENIAL_PHRASES.some((phrase) => text.includes(phrase))) return true;
    tail = text.slice(-OVERLAP);
  }
  return false;
}
