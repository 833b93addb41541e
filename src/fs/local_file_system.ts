/**
 * {@link LocalFileSystem}: the executor's filesystem operations over the
 * host's own filesystem, with OS errors turned into `RpcError`s.
 *
 * @module
 */

import { Method } from "../protocol/methods.ts";
import { INVALID_PARAMS, INVALID_REQUEST, NOT_FOUND, RpcError } from "../protocol/errors.ts";
import type { WalkOptions, WalkResult } from "../protocol/types.ts";
import { parseWirePath } from "../protocol/paths.ts";
import { io, toRpcError } from "./io.ts";
import { walkDirectory } from "./walk.ts";
import {
  type DirectoryEntry,
  type ExecFileSystem,
  type FileMetadata,
  MAX_READ_FILE_BYTES,
} from "./file_system.ts";

/**
 * The executor's filesystem operations on the local host, using Deno's
 * async fs APIs. Every path must be absolute; failures are `RpcError`s whose
 * message reads `"<method> <path>: <OS error>"`.
 *
 * @example
 * ```ts
 * import { LocalFileSystem } from "./local_file_system.ts";
 *
 * const fs = new LocalFileSystem();
 * const dir = await Deno.makeTempDir();
 * await fs.createDirectory(`${dir}/a/b`);
 * await fs.writeFile(`${dir}/a/b/hello.txt`, new TextEncoder().encode("hi"));
 * await fs.copy(`${dir}/a`, `${dir}/copy`, { recursive: true });
 * const text = new TextDecoder().decode(await fs.readFile(`${dir}/copy/b/hello.txt`));
 * console.log(text); // "hi"
 * await fs.remove(dir);
 * ```
 */
export class LocalFileSystem implements ExecFileSystem {
  /** Reads a whole file, refusing files larger than 512 MiB. */
  async readFile(path: string): Promise<Uint8Array> {
    const method = Method.fsReadFile;
    path = nativePath(Method.fsReadFile, "path", path);
    const info = await io(method, path, () => Deno.stat(path));
    if (!info.isFile) {
      // A device (/dev/zero) or fifo would be read forever or block.
      throw new RpcError(
        INVALID_REQUEST,
        `${method} ${path}: not a regular file; only regular files can be read`,
      );
    }
    if (info.size > MAX_READ_FILE_BYTES) throw tooLarge();
    const data = await io(method, path, () => Deno.readFile(path));
    // The file may have grown between the stat and the read.
    if (data.byteLength > MAX_READ_FILE_BYTES) throw tooLarge();
    return data;
  }

  /** Creates or truncates a file; the parent directory must exist. */
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    path = nativePath(Method.fsWriteFile, "path", path);
    await io(Method.fsWriteFile, path, () => Deno.writeFile(path, data));
  }

  /** Creates a directory, with its missing parents unless `recursive` is false. */
  async createDirectory(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    path = nativePath(Method.fsCreateDirectory, "path", path);
    const recursive = options.recursive ?? true;
    await io(Method.fsCreateDirectory, path, () => Deno.mkdir(path, { recursive }));
  }

  /** Describes a path; symlinks are followed except for `isSymlink`. */
  async getMetadata(path: string): Promise<FileMetadata> {
    const method = Method.fsGetMetadata;
    path = nativePath(Method.fsGetMetadata, "path", path);
    const link = await io(method, path, () => Deno.lstat(path));
    let target: Deno.FileInfo | undefined = link;
    if (link.isSymlink) {
      try {
        target = await Deno.stat(path);
      } catch {
        target = undefined; // Broken (or looping) symlink: describe the link itself.
      }
    }
    const info = target ?? link;
    return {
      isDirectory: target?.isDirectory ?? false,
      isFile: target?.isFile ?? false,
      isSymlink: link.isSymlink,
      size: info.size,
      createdAtMs: unixMs(info.birthtime),
      modifiedAtMs: unixMs(info.mtime),
    };
  }

  /** Lists a directory, unsorted, skipping entries that cannot be stat'ed. */
  async readDirectory(path: string): Promise<DirectoryEntry[]> {
    const method = Method.fsReadDirectory;
    path = nativePath(Method.fsReadDirectory, "path", path);
    const raw = await io(method, path, () => Array.fromAsync(Deno.readDir(path)));
    const entries = await Promise.all(raw.map(async (entry): Promise<DirectoryEntry | null> => {
      if (!entry.isSymlink) {
        return { fileName: entry.name, isDirectory: entry.isDirectory, isFile: entry.isFile };
      }
      try {
        const info = await Deno.stat(joinPath(path, entry.name));
        return { fileName: entry.name, isDirectory: info.isDirectory, isFile: info.isFile };
      } catch {
        return null;
      }
    }));
    return entries.filter((entry) => entry !== null);
  }

  /** Removes a path (a symlink itself, never its target). */
  async remove(
    path: string,
    options: { recursive?: boolean; force?: boolean } = {},
  ): Promise<void> {
    const method = Method.fsRemove;
    path = nativePath(Method.fsRemove, "path", path);
    const recursive = options.recursive ?? true;
    const force = options.force ?? true;
    try {
      const info = await io(method, path, () => Deno.lstat(path));
      await io(method, path, () => Deno.remove(path, { recursive: info.isDirectory && recursive }));
    } catch (err) {
      if (force && err instanceof RpcError && err.code === NOT_FOUND) return;
      throw err;
    }
  }

  /** The canonical absolute path (symlinks, `.` and `..` resolved); the path must exist. */
  async canonicalize(path: string): Promise<string> {
    path = nativePath(Method.fsCanonicalize, "path", path);
    return await io(Method.fsCanonicalize, path, () => Deno.realPath(path));
  }

  /** The files and directories below `path`, breadth first, bounded (see `walk.ts`). */
  async walk(path: string, options: WalkOptions): Promise<WalkResult> {
    path = nativePath(Method.fsWalk, "path", path);
    return await io(Method.fsWalk, path, () => walkDirectory(path, options));
  }

  /** A file's contents as a stream (read as it is consumed; cancel to stop early). */
  async readFileStream(path: string): Promise<ReadableStream<Uint8Array>> {
    path = nativePath(Method.fsOpen, "path", path);
    const file = await io(Method.fsOpen, path, () => Deno.open(path, { read: true }));
    const info = await file.stat().catch(() => null);
    if (info === null || !info.isFile) {
      file.close();
      throw new RpcError(INVALID_REQUEST, `path \`${path}\` is not a file`);
    }
    return file.readable;
  }

  /** Replaces a file's contents (created or truncated now) with what is written to the stream. */
  async writeFileStream(path: string): Promise<WritableStream<Uint8Array>> {
    path = nativePath(Method.fsOpen, "path", path);
    const options = { write: true, create: true, truncate: true };
    const file = await io(Method.fsOpen, path, () => Deno.open(path, options));
    return file.writable;
  }

  /** Copies a file, a symlink, or (with `recursive`) a directory tree. */
  async copy(
    sourcePath: string,
    destinationPath: string,
    options: { recursive: boolean },
  ): Promise<void> {
    const method = Method.fsCopy;
    sourcePath = nativePath(Method.fsCopy, "sourcePath", sourcePath);
    destinationPath = nativePath(Method.fsCopy, "destinationPath", destinationPath);
    const info = await io(method, sourcePath, () => Deno.lstat(sourcePath));
    if (info.isSymlink) {
      await copySymlink(sourcePath, destinationPath);
    } else if (info.isDirectory) {
      if (!options.recursive) {
        throw new RpcError(
          INVALID_REQUEST,
          "fs/copy requires recursive: true when sourcePath is a directory",
        );
      }
      const source = await io(method, sourcePath, () => Deno.realPath(sourcePath));
      const destination = await resolveDestination(destinationPath);
      if (isSameOrDescendant(source, destination)) {
        throw new RpcError(
          INVALID_REQUEST,
          "fs/copy cannot copy a directory to itself or one of its descendants",
        );
      }
      await copyDirectory(sourcePath, destinationPath);
    } else if (info.isFile) {
      await refuseSameFile(info, destinationPath);
      await copyRegularFile(sourcePath, destinationPath);
    } else {
      throw new RpcError(
        INVALID_REQUEST,
        "fs/copy only supports regular files, directories, and symlinks",
      );
    }
  }
}

/**
 * The native absolute path of a path argument (an absolute path, or a
 * `file://` URI, as on the wire); `INVALID_PARAMS` naming the argument, in
 * the executor's words, otherwise.
 */
function nativePath(method: string, name: string, value: string): string {
  const path = typeof value === "string"
    ? parseWirePath(value)
    : { error: `must be a string, got ${typeof value}` };
  if ("error" in path) {
    throw new RpcError(INVALID_PARAMS, `invalid params for ${method}: ${name}: ${path.error}`);
  }
  return path.native;
}

/** The error for a file over {@link MAX_READ_FILE_BYTES}. */
function tooLarge(): RpcError {
  return new RpcError(
    INVALID_REQUEST,
    `file is too large to read: limit is ${MAX_READ_FILE_BYTES} bytes`,
  );
}

/** A `Date` as Unix milliseconds, 0 when missing or invalid. */
function unixMs(date: Date | null): number {
  const ms = date?.getTime();
  return ms === undefined || Number.isNaN(ms) ? 0 : ms;
}

/** `dir/name` without doubling the slash when `dir` ends with one. */
function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

/** True when `path` equals `ancestor` or lies below it (both canonical). */
function isSameOrDescendant(ancestor: string, path: string): boolean {
  if (ancestor === "/") return true;
  return path === ancestor || path.startsWith(`${ancestor}/`);
}

/**
 * The canonical form of a copy destination that may not exist yet: the
 * nearest existing ancestor is canonicalized and the missing components are
 * appended (`.` dropped, `..` applied lexically).
 */
async function resolveDestination(path: string): Promise<string> {
  const missing: string[] = [];
  let existing = path;
  for (;;) {
    try {
      existing = await Deno.realPath(existing);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw toRpcError(Method.fsCopy, existing, err);
      const trimmed = existing.replace(/\/+$/, "");
      const slash = trimmed.lastIndexOf("/");
      if (slash < 0 || trimmed === "") throw toRpcError(Method.fsCopy, path, err);
      missing.unshift(trimmed.slice(slash + 1));
      existing = trimmed.slice(0, slash) || "/";
    }
  }
  const parts = existing.split("/").filter((part) => part !== "");
  for (const part of missing) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/**
 * Refuses to copy a file onto itself, which would truncate it to nothing
 * before reading it.
 */
async function refuseSameFile(source: Deno.FileInfo, destinationPath: string): Promise<void> {
  let destination: Deno.FileInfo;
  try {
    destination = await Deno.stat(destinationPath);
  } catch {
    return; // Missing (or unreadable) destination: the copy itself reports any problem.
  }
  if (
    source.ino !== null && source.dev === destination.dev && source.ino === destination.ino
  ) {
    throw new RpcError(INVALID_REQUEST, "fs/copy cannot copy a file to itself");
  }
}

/** Recreates the symlink at `source` as `destination`, with the same target. */
async function copySymlink(source: string, destination: string): Promise<void> {
  const target = await io(Method.fsCopy, source, () => Deno.readLink(source));
  await io(Method.fsCopy, destination, () => Deno.symlink(target, destination));
}

/** Copies a regular file's contents and mode bits, overwriting `destination`. */
async function copyRegularFile(source: string, destination: string): Promise<void> {
  await io(Method.fsCopy, `${source} -> ${destination}`, () => Deno.copyFile(source, destination));
}

/**
 * Copies a directory tree into `destination` (created when missing, merged
 * into when present). Symlinks are recreated, not followed; special files
 * (fifos, sockets, devices) are skipped.
 */
async function copyDirectory(source: string, destination: string): Promise<void> {
  await io(Method.fsCopy, destination, () => Deno.mkdir(destination, { recursive: true }));
  const entries = await io(Method.fsCopy, source, () => Array.fromAsync(Deno.readDir(source)));
  for (const entry of entries) {
    const from = joinPath(source, entry.name);
    const to = joinPath(destination, entry.name);
    if (entry.isSymlink) await copySymlink(from, to);
    else if (entry.isDirectory) await copyDirectory(from, to);
    else if (entry.isFile) await copyRegularFile(from, to);
  }
}
