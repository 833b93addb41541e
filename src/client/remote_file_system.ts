/**
 * {@link ExecFileSystem} over an executor connection (`fs/*` methods). Errors
 * are the executor's `RpcError`s, with the same codes as the local version.
 * Paths go out as `file://` URIs (what the reference's current protocol
 * requires) and come back as native paths.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import type {
  DirectoryEntry,
  ExecFileSystem,
  FileMetadata,
  WalkOptions,
  WalkResult,
} from "../fs/file_system.ts";
import { parseWirePath, toFileUri } from "../protocol/paths.ts";
import defer * as schemas from "../protocol/schemas.ts";
import type { RpcClient } from "../rpc/rpc_client.ts";

/** Bytes per `fs/readBlock` and `fs/writeBlock` (the protocol's largest block). */
const BLOCK_BYTES = 1024 * 1024;

/** A path from the executor, as a native path. */
function native(path: string): string {
  const parsed = parseWirePath(path);
  return "error" in parsed ? path : parsed.native;
}

/** The executor's filesystem. */
export class RemoteFileSystem implements ExecFileSystem {
  readonly #rpc: RpcClient;
  readonly #uris: () => boolean;

  /**
   * Wraps a connected RPC client. `uris` says whether the executor speaks
   * the current protocol (paths as `file://` URIs) rather than April's
   * (native paths); it is asked at each call, as it is known only once the
   * connection is initialized.
   */
  constructor(rpc: RpcClient, options: { uris: () => boolean }) {
    this.#rpc = rpc;
    this.#uris = options.uris;
  }

  /** A native absolute path as the executor wants it; anything else is sent as is (and refused there). */
  #wire(path: string): string {
    return this.#uris() && path.startsWith("/") ? toFileUri(path) : path;
  }

  /** Reads a whole file. */
  async readFile(path: string): Promise<Uint8Array> {
    const raw = await this.#rpc.call(Method.fsReadFile, { path: this.#wire(path) });
    return schemas.results.readFile.parse(raw).dataBase64;
  }

  /** Creates or truncates a file. */
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    await this.#rpc.call(Method.fsWriteFile, {
      path: this.#wire(path),
      dataBase64: data.toBase64(),
    });
  }

  /** Creates a directory (`mkdir -p` unless `recursive: false`). */
  async createDirectory(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.#rpc.call(Method.fsCreateDirectory, {
      path: this.#wire(path),
      recursive: options.recursive ?? true,
    });
  }

  /** Describes a path. */
  async getMetadata(path: string): Promise<FileMetadata> {
    const raw = await this.#rpc.call(Method.fsGetMetadata, { path: this.#wire(path) });
    const result = schemas.results.getMetadata.parse(raw);
    return { ...result, size: result.size ?? 0 };
  }

  /** Lists a directory. */
  async readDirectory(path: string): Promise<DirectoryEntry[]> {
    const raw = await this.#rpc.call(Method.fsReadDirectory, { path: this.#wire(path) });
    return schemas.results.readDirectory.parse(raw).entries;
  }

  /** Removes a path. */
  async remove(
    path: string,
    options: { recursive?: boolean; force?: boolean } = {},
  ): Promise<void> {
    await this.#rpc.call(Method.fsRemove, {
      path: this.#wire(path),
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
      sourcePath: this.#wire(sourcePath),
      destinationPath: this.#wire(destinationPath),
      recursive: options.recursive,
    });
  }

  /** The canonical path. */
  async canonicalize(path: string): Promise<string> {
    const raw = await this.#rpc.call(Method.fsCanonicalize, { path: this.#wire(path) });
    return native(schemas.results.canonicalize.parse(raw).path);
  }

  /** The files and directories below a directory, bounded. */
  async walk(path: string, options: WalkOptions): Promise<WalkResult> {
    const raw = await this.#rpc.call(Method.fsWalk, { path: this.#wire(path), options });
    const result = schemas.results.walk.parse(raw);
    return {
      entries: result.entries.map((e) => ({ path: native(e.path), kind: e.kind })),
      errors: result.errors.map((e) => ({ path: native(e.path), message: e.message })),
      truncated: result.truncated,
    };
  }

  /** A file's contents, read block by block (`fs/open`, `fs/readBlock`) as the stream is consumed. */
  async readFileStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const handleId = await this.#open(path, "read");
    let offset = 0;
    const close = async () => {
      await this.#rpc.call(Method.fsClose, { handleId }).catch(() => {});
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const raw = await this.#rpc.call(Method.fsReadBlock, {
            handleId,
            offset,
            len: BLOCK_BYTES,
          });
          const block = schemas.results.readBlock.parse(raw);
          offset += block.chunk.byteLength;
          if (block.chunk.byteLength > 0) controller.enqueue(block.chunk);
          if (block.eof || block.chunk.byteLength === 0) {
            await close();
            controller.close();
          }
        } catch (error) {
          await close();
          controller.error(error);
        }
      },
      cancel: close,
    }, { highWaterMark: 0 });
  }

  /** Replaces a file's contents, block by block (`fs/open` in `replace` mode, `fs/writeBlock`). */
  async writeFileStream(path: string): Promise<WritableStream<Uint8Array>> {
    const handleId = await this.#open(path, "replace");
    let offset = 0;
    const close = async () => {
      await this.#rpc.call(Method.fsClose, { handleId });
    };
    return new WritableStream<Uint8Array>({
      write: async (data) => {
        for (let at = 0; at < data.byteLength; at += BLOCK_BYTES) {
          const block = data.subarray(at, at + BLOCK_BYTES);
          await this.#rpc.call(Method.fsWriteBlock, {
            handleId,
            offset,
            chunk: block.toBase64(),
          });
          offset += block.byteLength;
        }
      },
      close,
      abort: () => close().catch(() => {}),
    });
  }

  async #open(path: string, mode: "read" | "replace"): Promise<string> {
    const handleId = `h-${crypto.randomUUID()}`;
    const raw = await this.#rpc.call(Method.fsOpen, { handleId, path: this.#wire(path), mode });
    return schemas.results.open.parse(raw).handleId;
  }
}
