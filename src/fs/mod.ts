/**
 * Filesystem operations behind the executor's `fs/*` methods: the
 * {@link ExecFileSystem} interface and its local implementation.
 *
 * @example
 * ```ts
 * import { type ExecFileSystem, LocalFileSystem } from "./mod.ts";
 *
 * const fs: ExecFileSystem = new LocalFileSystem();
 * const meta = await fs.getMetadata("/tmp");
 * console.log(meta.isDirectory); // true
 * ```
 *
 * @module
 */

export type { DirectoryEntry, ExecFileSystem, FileMetadata } from "./file_system.ts";
export { MAX_READ_FILE_BYTES } from "./file_system.ts";
export { LocalFileSystem } from "./local_file_system.ts";
