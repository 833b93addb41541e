/**
 * `process/*` methods: validated params in, the session's process table and
 * workers do the work.
 *
 * @module
 */

import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { Method } from "../protocol/methods.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { StartResult, TerminateResult, WriteResult } from "../protocol/schemas.ts";
import { type ProcessHost, STDIN_BACKLOG_BYTES } from "../process/host/process_host.ts";
import type { ProcessTable } from "../process/host/process_table.ts";
import { CloseConnection, RawJson, type SessionMethod, sessionMethod } from "./methods.ts";

/** The longest long-poll a timer can express (~24.8 days). */
const MAX_WAIT_MS = 2_147_483_647;
/**
 * A process's stdin backlog past which a write sent as a notification (which
 * cannot be held back) closes the connection: a client that floods without
 * waiting for statuses must not exhaust the executor's memory.
 */
export const MAX_NOTIFIED_BACKLOG = 8 * STDIN_BACKLOG_BYTES;

function runningProcess(table: ProcessTable, processId: string): ProcessHost {
  const entry = table.lookup(processId);
  if (entry === undefined) throw new RpcError(INVALID_REQUEST, `unknown process id ${processId}`);
  if (entry === "starting") {
    throw new RpcError(INVALID_REQUEST, `process id ${processId} is starting`);
  }
  return entry;
}

/** Handlers of the `process/*` methods, by name. */
export const processMethods: Record<string, SessionMethod> = {
  [Method.processStart]: sessionMethod({
    family: "exec",
    params: () => schemas.startParams,
    async run(p, { session }): Promise<StartResult> {
      const host = await session.processes.start(p);
      return { processId: p.processId, sandboxType: host.sandboxed ? "linuxSeccomp" : "none" };
    },
  }),

  [Method.processRead]: sessionMethod({
    family: "exec",
    params: () => schemas.readParams,
    async run(p, { session }): Promise<RawJson> {
      const host = runningProcess(session.processes, p.processId);
      const text = await host.readJson({
        afterSeq: p.afterSeq ?? 0,
        maxBytes: p.maxBytes ?? null,
        waitMs: Math.min(p.waitMs ?? 0, MAX_WAIT_MS),
      });
      return new RawJson(text);
    },
  }),

  /**
   * Answered once the stdin backlog allows (backpressure on the writer). Sent
   * as a notification it is not answered, so it cannot be held back: past
   * {@link MAX_NOTIFIED_BACKLOG} the connection is closed instead.
   */
  [Method.processWrite]: sessionMethod({
    family: "exec",
    params: () => schemas.writeParams,
    notifiable: true,
    run(p, { session, notification }): WriteResult | Promise<WriteResult> {
      const entry = session.processes.lookup(p.processId);
      if (entry === undefined) return { status: "unknownProcess" };
      if (entry === "starting") return { status: "starting" };
      if (notification && entry.stdinBacklog > MAX_NOTIFIED_BACKLOG) {
        throw new CloseConnection(1008, "stdin backlog exceeded: send process/write as requests");
      }
      const status = entry.write(p.chunk, {
        closeStdin: p.closeStdin ?? false,
        writeId: p.writeId,
      });
      if (status !== "accepted" || notification || entry.stdinBacklog <= STDIN_BACKLOG_BYTES) {
        return { status };
      }
      return entry.whenBacklogBelow(STDIN_BACKLOG_BYTES).then(() => ({ status }));
    },
  }),

  /** SIGINT to the process group; a process that is unknown or gone gets nothing (and no error). */
  [Method.processSignal]: sessionMethod({
    family: "exec",
    params: () => schemas.signalParams,
    async run(p, { session }) {
      const host = await session.processes.whenStarted(p.processId);
      if (host !== undefined) await host.terminate("SIGINT");
      return {};
    },
  }),

  [Method.processTerminate]: sessionMethod({
    family: "exec",
    params: () => schemas.terminateParams,
    async run(p, { session }): Promise<TerminateResult> {
      // A terminate that races the start applies once the process runs.
      const host = await session.processes.whenStarted(p.processId);
      if (host === undefined) return { running: false };
      return { running: await host.terminate(p.signal ?? "SIGKILL") };
    },
  }),
};
