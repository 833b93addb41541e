/**
 * `fs/*` methods: validated params in, {@link LocalFileSystem} does the work.
 * Only unsandboxed requests are served: a `sandbox` policy that asks for
 * restrictions is refused rather than silently ignored.
 *
 * @module
 */

import type { z } from "zod";
import { LocalFileSystem } from "../fs/local_file_system.ts";
import { INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import { checkFsAccess, type FsGuard, type PathAccess } from "../sandbox/fs_access.ts";
import { io } from "../fs/io.ts";
import { walkDirectory } from "../fs/walk.ts";
import type { FileHandles } from "../fs/file_handles.ts";
import { formatWirePath } from "../protocol/paths.ts";
import defer * as schemas from "../protocol/schemas.ts";
import { Method } from "../protocol/methods.ts";
import { type MethodContext, type SessionMethod, sessionMethod } from "./methods.ts";

const fs = new LocalFileSystem();
const EMPTY = {};

/**
 * An `fs/*` method: the paths it reads and writes (`touches`) are checked
 * against the request's optional `sandbox` before `run`, which gets what a
 * sandboxed request may see (null without a sandbox).
 */
function fsMethod<S extends z.ZodType<{ sandbox?: unknown }>>(
  name: string,
  params: () => S,
  touches: (params: z.output<S>) => PathAccess[],
  run: (params: z.output<S>, context: MethodContext, guard: FsGuard | null) => Promise<unknown>,
): [string, SessionMethod] {
  return [
    name,
    sessionMethod({
      family: "filesystem",
      params,
      async run(p, context) {
        const guard = await checkFsAccess(name, p.sandbox, touches(p));
        return await run(p, context, guard);
      },
    }),
  ];
}

const reads = (path: string, tree = false): PathAccess[] => [{ path, write: false, tree }];
const writes = (path: string, tree = false): PathAccess[] => [{ path, write: true, tree }];

/** An `fs/*` method on the session's open files (no path, no sandbox). */
function handleMethod<S extends z.ZodType>(
  name: string,
  params: () => S,
  run: (params: z.output<S>, files: FileHandles) => Promise<unknown>,
): [string, SessionMethod] {
  return [
    name,
    sessionMethod({
      family: "filesystem",
      params,
      run: (p, { session }) => run(p, session.files),
    }),
  ];
}

/** Handlers of the `fs/*` methods, by name. */
export const fsMethods: Record<string, SessionMethod> = Object.fromEntries([
  fsMethod(Method.fsReadFile, () => schemas.readFileParams, (p) => reads(p.path), async (p) => {
    return { dataBase64: (await fs.readFile(p.path)).toBase64() };
  }),
  fsMethod(Method.fsWriteFile, () => schemas.writeFileParams, (p) => writes(p.path), async (p) => {
    let data: Uint8Array;
    try {
      data = Uint8Array.fromBase64(p.dataBase64);
    } catch (error) {
      // -32600, as the reference: the params parsed, the bytes did not.
      throw new RpcError(
        INVALID_REQUEST,
        `fs/writeFile requires valid base64 dataBase64: ${(error as Error).message}`,
      );
    }
    await fs.writeFile(p.path, data);
    return EMPTY;
  }),
  fsMethod(
    Method.fsCreateDirectory,
    () => schemas.createDirectoryParams,
    (p) => writes(p.path),
    async (p) => {
      await fs.createDirectory(p.path, { recursive: p.recursive ?? true });
      return EMPTY;
    },
  ),
  fsMethod(
    Method.fsGetMetadata,
    () => schemas.getMetadataParams,
    (p) => reads(p.path),
    (p) => fs.getMetadata(p.path),
  ),
  fsMethod(
    Method.fsReadDirectory,
    () => schemas.readDirectoryParams,
    (p) => reads(p.path),
    async (p) => {
      return { entries: await fs.readDirectory(p.path) };
    },
  ),
  fsMethod(
    Method.fsRemove,
    () => schemas.removeParams,
    (p) => writes(p.path, p.recursive ?? true),
    async (p) => {
      await fs.remove(p.path, { recursive: p.recursive ?? true, force: p.force ?? true });
      return EMPTY;
    },
  ),
  fsMethod(
    Method.fsCopy,
    () => schemas.copyParams,
    (p) => [...reads(p.sourcePath, p.recursive), ...writes(p.destinationPath, p.recursive)],
    async (p) => {
      await fs.copy(p.sourcePath, p.destinationPath, { recursive: p.recursive });
      return EMPTY;
    },
  ),
  fsMethod(
    Method.fsCanonicalize,
    () => schemas.canonicalizeParams,
    (p) => reads(p.path.native),
    async (p) => {
      return { path: formatWirePath(await fs.canonicalize(p.path.native), p.path) };
    },
  ),
  fsMethod(
    Method.fsWalk,
    () => schemas.walkParams,
    (p) => reads(p.path.native),
    async (p, _, guard) => {
      const root = p.path.native;
      const found = await io(
        Method.fsWalk,
        root,
        () =>
          walkDirectory(
            root,
            p.options,
            guard === null ? {} : { visible: (r) => guard.visible(r) },
          ),
      );
      return {
        entries: found.entries.map((e) => ({ path: formatWirePath(e.path, p.path), kind: e.kind })),
        errors: found.errors.map((e) => ({
          path: formatWirePath(e.path, p.path),
          message: e.message,
        })),
        truncated: found.truncated,
      };
    },
  ),
  fsMethod(
    Method.fsOpen,
    () => schemas.openParams,
    (p) => p.mode === "replace" ? writes(p.path) : reads(p.path),
    async (p, { session }) => {
      await session.files.open(p.handleId, p.path, p.mode);
      return { handleId: p.handleId };
    },
  ),
  handleMethod(Method.fsReadBlock, () => schemas.readBlockParams, async (p, files) => {
    const block = await files.readBlock(p.handleId, p.offset, p.len);
    return { chunk: block.chunk.toBase64(), eof: block.eof };
  }),
  handleMethod(Method.fsWriteBlock, () => schemas.writeBlockParams, async (p, files) => {
    await files.writeBlock(p.handleId, p.offset, p.chunk);
    return EMPTY;
  }),
  handleMethod(Method.fsClose, () => schemas.closeParams, async (p, files) => {
    await files.close(p.handleId);
    return EMPTY;
  }),
]);
