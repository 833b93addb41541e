/**
 * A process on an executor, seen from the client: it reorders pushed events
 * by seq (dropping duplicates), keeps a bounded replay history for late
 * subscribers, and turns a lost connection into a `failed` event and
 * synthesized read results.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import { encodeWriteFrame } from "../protocol/binary_write.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { StartParams } from "../protocol/types.ts";
import { DisconnectedError, type RpcClient } from "../rpc/rpc_client.ts";
import { RpcError } from "../protocol/errors.ts";
import { ProcessEvents } from "../exec/process_events.ts";
import type { ExecProcess, ExecProcessEvent, ExitStatus, ReadOptions } from "../exec/types.ts";
import type {
  ProcessEvent,
  ReadResponse,
  TerminateSignal,
  WriteStatus,
} from "../protocol/types.ts";
import { waitForExit } from "../exec/wait.ts";

const encoder = new TextEncoder();

/**
 * Write notifications a reconnecting client keeps unconfirmed at most (all
 * processes together): well within the executor's memory of 1,024 write
 * ids per process, so that one sent again is recognized.
 */
export const MAX_UNCONFIRMED_WRITES = 512;

/** A process on an executor. */
export class RemoteProcess implements ExecProcess {
  readonly processId: string;
  readonly #rpc: RpcClient;
  readonly #events: ProcessEvents;

  readonly #notifyWrites: boolean;
  /** Write notifications are kept to be sent again after a reconnect. */
  readonly #replayWrites: boolean;
  readonly #writePrefix = crypto.randomUUID().slice(0, 8) + ".";
  #writeCount = 1;
  /** The process id as UTF-8 when writes go as binary frames; null for base64 JSON. */
  readonly #idBytes: Uint8Array | null;

  /**
   * Creates the client-side record; the caller routes notifications to
   * {@link accept}. `notifyWrites`: the executor takes `process/write` as a
   * notification.
   */
  constructor(
    params: StartParams,
    rpc: RpcClient,
    options: {
      onClosed: () => void;
      notifyWrites: boolean;
      binaryWrites?: boolean;
      replayWrites?: boolean;
    },
  ) {
    const onClosed = options.onClosed;
    this.#notifyWrites = options.notifyWrites;
    this.#replayWrites = options.replayWrites ?? false;
    // Binary frames carry the id as UTF-8: only for ids that survive that (no lone surrogates) and fit.
    const idBytes = options.binaryWrites && params.processId.isWellFormed()
      ? encoder.encode(params.processId)
      : null;
    this.#idBytes = idBytes !== null && idBytes.byteLength <= 0xffff ? idBytes : null;
    this.processId = params.processId;
    this.#rpc = rpc;
    this.#events = new ProcessEvents({
      onEnded: onClosed,
      recover: (afterSeq) => this.read({ afterSeq }),
    });
  }

  /** Takes a pushed event (reordered by seq, duplicates dropped). */
  accept(event: ProcessEvent): void {
    this.#events.accept(event);
  }

  /** Publishes what a read found (attaching to a process started by an earlier connection). */
  catchUp(response: ReadResponse): void {
    this.#events.catchUp(response);
  }

  /**
   * After a reconnect: reads what the executor retained since the last
   * event seen and publishes it (events pushed meanwhile are merged in seq
   * order). With `now`, sent at once, ahead of held calls (during the
   * reconnect; it rejects when the new channel fails too). A process the
   * executor no longer has fails.
   */
  async resync(options: { now: boolean }): Promise<void> {
    if (this.#events.failure !== null) return;
    let raw: unknown;
    try {
      raw = await this.#rpc.call(Method.processRead, {
        processId: this.processId,
        afterSeq: this.#events.lastSeq,
        waitMs: 0,
      }, { now: options.now });
    } catch (error) {
      if (!(error instanceof RpcError)) throw error;
      this.fail(`process ${this.processId} was lost while reconnecting: ${error.message}`);
      return;
    }
    this.#events.catchUp(schemas.results.read.parse(raw));
  }

  /** Marks the process failed (connection lost): a `failed` event ends every subscription. */
  fail(message: string): void {
    this.#events.fail(message);
  }

  events(): AsyncIterableIterator<ExecProcessEvent> {
    return this.#events.subscribe();
  }

  listen(handler: (event: ExecProcessEvent) => void): () => void {
    return this.#events.listen(handler);
  }

  async read(options: ReadOptions = {}): Promise<ReadResponse> {
    if (this.#events.failure !== null) return this.#failedRead();
    let raw: unknown;
    try {
      raw = await this.#rpc.call(Method.processRead, {
        processId: this.processId,
        afterSeq: options.afterSeq ?? 0,
        maxBytes: options.maxBytes,
        waitMs: options.waitMs ?? 0,
      });
    } catch (error) {
      if (error instanceof DisconnectedError) {
        this.fail(error.message);
        return this.#failedRead();
      }
      throw error;
    }
    return schemas.results.read.parse(raw);
  }

  async write(data: Uint8Array | string): Promise<WriteStatus> {
    return await this.#write(typeof data === "string" ? encoder.encode(data) : data, false);
  }

  send(data: Uint8Array | string): void {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const rpc = this.#rpc;
    // A write that may be sent again after a reconnect is kept until confirmed: past
    // MAX_UNCONFIRMED_WRITES, one waits for an answer (which confirms those before it).
    if (
      !this.#notifyWrites || rpc.disconnected !== null ||
      (this.#replayWrites && rpc.unconfirmed >= MAX_UNCONFIRMED_WRITES)
    ) {
      this.#write(bytes, false).catch(() => {});
      return;
    }
    const writeId = this.#nextWriteId();
    const options = { replayable: this.#replayWrites };
    if (this.#idBytes !== null) {
      rpc.notifyBinary(
        encodeWriteFrame(this.#idBytes, bytes, { writeId: encoder.encode(writeId) }),
        options,
      );
    } else {
      rpc.notify(Method.processWrite, {
        processId: this.processId,
        chunk: bytes.toBase64(),
        writeId,
      }, options);
    }
  }

  closeStdin(): Promise<WriteStatus> {
    return this.#write(new Uint8Array(0), true);
  }

  /** A `process/write` request, as a binary frame when the executor takes them. */
  async #write(bytes: Uint8Array, closeStdin: boolean): Promise<WriteStatus> {
    const writeId = this.#nextWriteId();
    const idBytes = this.#idBytes;
    const raw = idBytes !== null
      ? await this.#rpc.callBinary((requestId) =>
        encodeWriteFrame(idBytes, bytes, {
          requestId,
          closeStdin,
          writeId: encoder.encode(writeId),
        })
      )
      : await this.#rpc.call(Method.processWrite, {
        processId: this.processId,
        chunk: bytes.toBase64(),
        writeId,
        ...(closeStdin ? { closeStdin } : {}),
      });
    return schemas.results.write.parse(raw).status;
  }

  /**
   * The next write's idempotency key: unique to this handle (a random
   * prefix) and in order, so a retried write is recognized and applied once.
   */
  #nextWriteId(): string {
    return `${this.#writePrefix}${this.#writeCount++}`;
  }

  async terminate(options: { signal?: TerminateSignal } = {}): Promise<boolean> {
    const raw = await this.#rpc.call(Method.processTerminate, {
      processId: this.processId,
      signal: options.signal,
    });
    return schemas.results.terminate.parse(raw).running;
  }

  wait(): Promise<ExitStatus> {
    return waitForExit((handler) => this.listen(handler));
  }

  #failedRead(): ReadResponse {
    return {
      chunks: [],
      nextSeq: this.#events.lastSeq + 1,
      exited: true,
      exitCode: null,
      closed: true,
      failure: this.#events.failure,
    };
  }
}
