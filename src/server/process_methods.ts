/**
 * `process/*` methods: validated params in, the session's process table and
 * workers do the work.
 *
 * @module
 */

import { INVALID_PARAMS, INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import {
  parseParams,
  readParams,
  startParams,
  terminateParams,
  writeParams,
} from "../protocol/schemas.ts";
import type { StartResult, TerminateResult, WriteResult } from "../protocol/types.ts";
import { type ProcessHost, STDIN_BACKLOG_BYTES } from "../process/host/process_host.ts";
import type { ProcessTable } from "../process/host/process_table.ts";
import { type MethodHandler, RawJson } from "./methods.ts";
import type { Session } from "./session_registry.ts";

/** The longest long-poll a timer can express (~24.8 days). */
const MAX_WAIT_MS = 2_147_483_647;
/** See {@link STDIN_BACKLOG_BYTES}: a write is answered only once the child read enough. */
export const MAX_STDIN_BACKLOG = STDIN_BACKLOG_BYTES;
/**
 * A process's stdin backlog past which a write sent as a notification (which
 * cannot be held back) closes the connection: a client that floods without
 * waiting for statuses must not exhaust the executor's memory.
 */
export const MAX_NOTIFIED_BACKLOG = 8 * MAX_STDIN_BACKLOG;

function runningProcess(table: ProcessTable, processId: string): ProcessHost {
  const entry = table.lookup(processId);
  if (entry === undefined) throw new RpcError(INVALID_REQUEST, `unknown process id ${processId}`);
  if (entry === "starting") {
    throw new RpcError(INVALID_REQUEST, `process id ${processId} is starting`);
  }
  return entry;
}

/** Handlers of the `process/*` methods. */
export const processMethods: Record<string, MethodHandler> = {
  async "process/start"(params, { session }): Promise<StartResult> {
    const p = parseParams(startParams, params, { method: "process/start" });
    await session.processes.start(p);
    return { processId: p.processId };
  },

  async "process/read"(params, { session }): Promise<RawJson> {
    const p = parseParams(readParams, params, { method: "process/read" });
    const host = runningProcess(session.processes, p.processId);
    const text = await host.readJson({
      afterSeq: p.afterSeq ?? 0,
      maxBytes: p.maxBytes ?? null,
      waitMs: Math.min(p.waitMs ?? 0, MAX_WAIT_MS),
    });
    return new RawJson(text);
  },

  async "process/write"(params, { session }): Promise<WriteResult> {
    const p = parseParams(writeParams, params, { method: "process/write" });
    let data: Uint8Array;
    try {
      data = Uint8Array.fromBase64(p.chunk);
    } catch {
      throw new RpcError(
        INVALID_PARAMS,
        "invalid params for process/write: chunk must be standard base64",
      );
    }
    return await writeBytes(session, {
      processId: p.processId,
      data,
      closeStdin: p.closeStdin ?? false,
    });
  },

  async "process/terminate"(params, { session }): Promise<TerminateResult> {
    const p = parseParams(terminateParams, params, { method: "process/terminate" });
    // A terminate that races the start applies once the process runs.
    const host = await session.processes.whenStarted(p.processId);
    if (host === undefined) return { running: false };
    return { running: await host.terminate(p.signal ?? "SIGKILL") };
  },
};

/**
 * `process/write` once its bytes are decoded (from base64 JSON or a binary
 * frame): resolves with the status when the stdin backlog allows.
 */
export async function writeBytes(
  session: Session,
  write: { processId: string; data: Uint8Array; closeStdin: boolean },
): Promise<WriteResult> {
  const entry = session.processes.lookup(write.processId);
  if (entry === undefined) return { status: "unknownProcess" };
  if (entry === "starting") return { status: "starting" };
  const status = entry.write(write.data, write.closeStdin);
  if (status === "accepted") await entry.whenBacklogBelow(MAX_STDIN_BACKLOG);
  return { status };
}
