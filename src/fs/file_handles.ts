/**
 * Open files by the caller's handle id (`fs/open`, `fs/readBlock`,
 * `fs/writeBlock`, `fs/close`), so that a file larger than memory moves in
 * blocks. Each session owns one table: bounded in open handles, and closed
 * whole when the session ends. Operations on one handle run one at a time.
 *
 * @module
 */

import { INVALID_REQUEST, NOT_FOUND, RpcError } from "../protocol/errors.ts";
import { Method } from "../protocol/methods.ts";
import { io } from "./io.ts";

/** Most files one table keeps open. */
export const MAX_OPEN_FILES = 64;
/** Largest block `readBlock` returns (and the largest it is asked for). */
export const MAX_BLOCK_BYTES = 1024 * 1024;

/** What a handle was opened for. */
export type OpenMode = "read" | "replace";

interface Handle {
  file: Deno.FsFile;
  path: string;
  mode: OpenMode;
  /** The last operation: the next one waits for it (a seek and a read must not interleave). */
  busy: Promise<unknown>;
}

/** A session's open files. */
export class FileHandles {
  readonly #handles = new Map<string, Handle>();
  #closed = false;

  /** Number of open handles. */
  get size(): number {
    return this.#handles.size;
  }

  /**
   * Opens `path` (absolute) as `handleId`: for reading, or to replace its
   * contents (created or truncated now, written by blocks).
   */
  async open(handleId: string, path: string, mode: OpenMode = "read"): Promise<void> {
    if (this.#closed) throw new RpcError(INVALID_REQUEST, "the session's files are closed");
    if (this.#handles.has(handleId)) {
      throw new RpcError(INVALID_REQUEST, `file handle \`${handleId}\` already exists`);
    }
    if (this.#handles.size >= MAX_OPEN_FILES) {
      throw new RpcError(
        INVALID_REQUEST,
        `too many open files in this session: the limit is ${MAX_OPEN_FILES}; close some with fs/close`,
      );
    }
    const options = mode === "read"
      ? { read: true }
      : { write: true, create: true, truncate: true };
    const file = await io(Method.fsOpen, path, () => Deno.open(path, options));
    try {
      const info = await io(Method.fsOpen, path, () => file.stat());
      if (!info.isFile) throw new RpcError(INVALID_REQUEST, `path \`${path}\` is not a file`);
    } catch (error) {
      file.close();
      throw error;
    }
    // A concurrent open of the same id, or the session ending meanwhile.
    if (this.#handles.has(handleId) || this.#closed) {
      file.close();
      throw new RpcError(INVALID_REQUEST, `file handle \`${handleId}\` already exists`);
    }
    this.#handles.set(handleId, { file, path, mode, busy: Promise.resolve() });
  }

  /** Up to `length` bytes from `offset`; `eof` once the block reaches the end of the file. */
  readBlock(
    handleId: string,
    offset: number,
    length: number,
  ): Promise<{ chunk: Uint8Array; eof: boolean }> {
    if (!Number.isInteger(length) || length < 1 || length > MAX_BLOCK_BYTES) {
      return Promise.reject(
        new RpcError(
          INVALID_REQUEST,
          `file read block length must be between 1 and ${MAX_BLOCK_BYTES}`,
        ),
      );
    }
    return this.#run(handleId, "read", async ({ file, path }) => {
      const buffer = new Uint8Array(length);
      let filled = 0;
      await io(Method.fsReadBlock, path, () => file.seek(offset, Deno.SeekMode.Start));
      while (filled < length) {
        const n = await io(Method.fsReadBlock, path, () => file.read(buffer.subarray(filled)));
        if (n === null || n === 0) break;
        filled += n;
      }
      const size = (await io(Method.fsReadBlock, path, () => file.stat())).size;
      return { chunk: buffer.subarray(0, filled), eof: offset + filled >= size };
    });
  }

  /** Writes `data` at `offset` (a gap before it reads as zeros). */
  writeBlock(handleId: string, offset: number, data: Uint8Array): Promise<void> {
    return this.#run(handleId, "replace", async ({ file, path }) => {
      await io(Method.fsWriteBlock, path, () => file.seek(offset, Deno.SeekMode.Start));
      let written = 0;
      while (written < data.byteLength) {
        written += await io(Method.fsWriteBlock, path, () => file.write(data.subarray(written)));
      }
    });
  }

  /** Closes a handle (after its pending operation); an unknown id is already closed. */
  async close(handleId: string): Promise<void> {
    const handle = this.#handles.get(handleId);
    if (handle === undefined) return;
    this.#handles.delete(handleId);
    await handle.busy.catch(() => {});
    handle.file.close();
  }

  /**
   * Closes every handle (the session ended); no handle opens after this.
   * Resolves once every file is closed (each after its pending operation).
   */
  closeAll(): Promise<void> {
    this.#closed = true;
    return Promise.all([...this.#handles.keys()].map((id) => this.close(id).catch(() => {})))
      .then(() => {});
  }

  #run<T>(handleId: string, mode: OpenMode, op: (handle: Handle) => Promise<T>): Promise<T> {
    const handle = this.#handles.get(handleId);
    if (handle === undefined) {
      return Promise.reject(new RpcError(NOT_FOUND, `unknown file handle \`${handleId}\``));
    }
    if (handle.mode !== mode) {
      const verb = mode === "read" ? "read from" : "written to";
      return Promise.reject(
        new RpcError(
          INVALID_REQUEST,
          `file handle \`${handleId}\` was opened to ${
            handle.mode === "read" ? "read" : "replace"
          } ${handle.path}: it cannot be ${verb}`,
        ),
      );
    }
    const result = handle.busy.catch(() => {}).then(() => op(handle));
    handle.busy = result;
    return result;
  }
}
