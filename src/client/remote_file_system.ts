/**
 * {@link ExecFileSystem} over an executor connection (`fs/*` methods). Errors
 * are the executor's `RpcError`s, with the same codes as the local version.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import type { DirectoryEntry, ExecFileSystem, FileMetadata } from "../fs/file_system.ts";
import { results } from "../protocol/schemas.ts";
import type { RpcClient } from "../rpc/rpc_client.ts";

/** The executor's filesystem. */
export class RemoteFileSystem implements ExecFileSystem {
  readonly #rpc: RpcClient;

  /** Wraps a connected RPC client. */
  constructor(rpc: RpcClient) {
    this.#rpc = rpc;
  }

  /** Reads a whole file. */
  async readFile(path: string): Promise<Uint8Array> {
    const raw = await this.#rpc.call(Method.fsReadFile, { path });
    return results.readFile.parse(raw).dataBase64;
  }

  /** Creates or truncates a file. */
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    await this.#rpc.call(Method.fsWriteFile, { path, dataBase64: data.toBase64() });
  }

  /** Creates a directory (`mkdir -p` unless `recursive: false`). */
  async createDirectory(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.#rpc.call(Method.fsCreateDirectory, { path, recursive: options.recursive ?? true });
  }

  /** Describes a path. */
  async getMetadata(path: string): Promise<FileMetadata> {
    const result = results.getMetadata.parse(await this.#rpc.call(Method.fsGetMetadata, { path }));
    return { ...result, size: result.size ?? 0 };
  }

  /** Lists a directory. */
  async readDirectory(path: string): Promise<DirectoryEntry[]> {
    const raw = await this.#rpc.call(Method.fsReadDirectory, { path });
    return results.readDirectory.parse(raw).entries;
  }

  /** Removes a path. */
  async remove(
    path: string,
    options: { recursive?: boolean; force?: boolean } = {},
  ): Promise<void> {
    await this.#rpc.call(Method.fsRemove, {
      path,
      recursive: options.recursive ?? true,
      force: options.force ?? true,
    });
  }

  /** Copies a file, symlink or (recursively) directory. */
  async copy(
    sourcePath: string,
    destinationPath: string,
    options: { recursive: boolean },
  ): Promise<void> {
    await this.#rpc.call(Method.fsCopy, {
      sourcePath,
      destinationPath,
      recursive: options.recursive,
    });
  }
}
