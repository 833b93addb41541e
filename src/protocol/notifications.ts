/**
 * The executor's process notifications (`process/output`, `process/exited`,
 * `process/closed`) as JSON-RPC text. Workers build them on the hot path,
 * so this module imports no code but the envelope builder and the names.
 *
 * @module
 */

import { notificationText } from "./jsonrpc.ts";
import { Method } from "./methods.ts";
import type { ProcessStream } from "./types.ts";

/**
 * The start of a process's notification params, made once per process:
 * `"processId":<id>,"seq":`. Each builder appends the seq and the rest.
 */
export function paramsPrefix(processId: string): string {
  return `"processId":${JSON.stringify(processId)},"seq":`;
}

/** `process/output` with the chunk in standard base64. */
export function outputNotification(
  prefix: string,
  output: { seq: number; stream: ProcessStream; chunkBase64: string },
): string {
  return notificationText(
    Method.processOutput,
    `{${prefix}${output.seq},"stream":"${output.stream}","chunk":"${output.chunkBase64}"}`,
  );
}

/** `process/exited` (`signal` is an execbridge extension). */
export function exitedNotification(
  prefix: string,
  exit: { seq: number; exitCode: number; signal: string | null; sandboxDenied: boolean },
): string {
  const signal = exit.signal === null ? "null" : JSON.stringify(exit.signal);
  return notificationText(
    Method.processExited,
    `{${prefix}${exit.seq},"exitCode":${exit.exitCode},"signal":${signal},"sandboxDenied":${exit.sandboxDenied}}`,
  );
}

/** `process/closed`. */
export function closedNotification(prefix: string, seq: number): string {
  return notificationText(Method.processClosed, `{${prefix}${seq}}`);
}
