/**
 * The filesystem surface behind the executor's `fs/*` methods, shared by the
 * local implementation ({@link ExecFileSystem} over the host's filesystem) and
 * any remote implementation (the same calls sent as JSON-RPC).
 *
 * Every method takes absolute paths and fails with an `RpcError` from
 * `../protocol/errors.ts`: `INVALID_PARAMS` for a relative path, `NOT_FOUND`
 * for a missing path, `INVALID_REQUEST` for a refused operation and
 * `INTERNAL_ERROR` for any other I/O failure.
 *
 * @module
 */

import type { DirectoryEntry, FileMetadata, WalkOptions, WalkResult } from "../protocol/types.ts";

/** The largest file `readFile` returns: 512 MiB. Larger files are refused. */
export const MAX_READ_FILE_BYTES = 536_870_912;

export type { DirectoryEntry, FileMetadata, WalkOptions, WalkResult };

/**
 * Filesystem operations of the executor. Paths must be absolute; errors are
 * `RpcError`s carrying a JSON-RPC code.
 */
export interface ExecFileSystem {
  /**
   * Reads a whole file. Files larger than {@link MAX_READ_FILE_BYTES} are
   * refused with `INVALID_REQUEST`.
   */
  readFile(path: string): Promise<Uint8Array>;
  /** Creates or truncates a file. The parent directory must exist (`NOT_FOUND` otherwise). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Creates a directory; with `recursive` (default true) also its missing parents, like `mkdir -p`. */
  createDirectory(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Describes a path; a broken symlink is reported, not an error. */
  getMetadata(path: string): Promise<FileMetadata>;
  /** Lists a directory, unsorted; entries whose stat fails (broken symlinks) are skipped. */
  readDirectory(path: string): Promise<DirectoryEntry[]>;
  /**
   * Removes a path; a symlink is removed itself, never its target. A non-empty
   * directory needs `recursive` (default true); a missing path is fine with
   * `force` (default true).
   */
  remove(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  /**
   * Copies a regular file (mode bits kept), a symlink (as a symlink with the
   * same target) or, with `recursive`, a directory tree.
   */
  copy(sourcePath: string, destinationPath: string, options: { recursive: boolean }): Promise<void>;
  /** The canonical absolute path: symlinks, `.` and `..` resolved. The path must exist. */
  canonicalize(path: string): Promise<string>;
  /**
   * The files and directories below a directory, breadth first and by name,
   * within the bounds of `options` (and the executor's own ceilings).
   */
  walk(path: string, options: WalkOptions): Promise<WalkResult>;
  /**
   * A file's contents as a stream, read block by block as it is consumed:
   * for files of any size (cancel the stream to stop early).
   */
  readFileStream(path: string): Promise<ReadableStream<Uint8Array>>;
  /**
   * Replaces a file's contents (the file is created or truncated now) with
   * what is written to the stream, block by block; closing the stream
   * finishes the file.
   */
  writeFileStream(path: string): Promise<WritableStream<Uint8Array>>;
}
