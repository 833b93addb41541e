/**
 * `fs/*` methods: validated params in, {@link LocalFileSystem} does the work.
 * Only unsandboxed requests are served: a `sandbox` policy that asks for
 * restrictions is refused rather than silently ignored.
 *
 * @module
 */

import type { z } from "zod";
import { LocalFileSystem } from "../fs/local_file_system.ts";
import { INVALID_PARAMS, INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import {
  copyParams,
  createDirectoryParams,
  getMetadataParams,
  readDirectoryParams,
  readFileParams,
  removeParams,
  writeFileParams,
} from "../protocol/schemas.ts";
import { Method } from "../protocol/methods.ts";
import { type SessionMethod, sessionMethod } from "./methods.ts";

const fs = new LocalFileSystem();
const EMPTY = {};

/** Refuses sandbox policies other than full access: execbridge has no fs sandbox. */
function checkSandbox(method: string, sandbox: unknown): void {
  if (sandbox === undefined || sandbox === null) return;
  const policy = (sandbox as { sandboxPolicy?: { type?: unknown } }).sandboxPolicy?.type;
  if (policy === undefined || policy === "danger-full-access" || policy === "external-sandbox") {
    return;
  }
  throw new RpcError(
    INVALID_REQUEST,
    `${method}: sandbox policy ${
      JSON.stringify(policy)
    } is not supported by execbridge; run the executor inside the sandbox instead`,
  );
}

/**
 * An `fs/*` method: its params carry an optional `sandbox`, checked (see
 * {@link checkSandbox}) before `run`.
 */
function fsMethod<S extends z.ZodType<{ sandbox?: unknown }>>(
  name: string,
  params: S,
  run: (params: z.output<S>) => Promise<unknown>,
): [string, SessionMethod] {
  return [
    name,
    sessionMethod({
      family: "filesystem",
      params,
      run(p) {
        checkSandbox(name, p.sandbox);
        return run(p);
      },
    }),
  ];
}

/** Handlers of the `fs/*` methods, by name. */
export const fsMethods: Record<string, SessionMethod> = Object.fromEntries([
  fsMethod(Method.fsReadFile, readFileParams, async (p) => {
    return { dataBase64: (await fs.readFile(p.path)).toBase64() };
  }),
  fsMethod(Method.fsWriteFile, writeFileParams, async (p) => {
    let data: Uint8Array;
    try {
      data = Uint8Array.fromBase64(p.dataBase64);
    } catch (error) {
      throw new RpcError(
        INVALID_PARAMS,
        `fs/writeFile requires valid base64 dataBase64: ${(error as Error).message}`,
      );
    }
    await fs.writeFile(p.path, data);
    return EMPTY;
  }),
  fsMethod(Method.fsCreateDirectory, createDirectoryParams, async (p) => {
    await fs.createDirectory(p.path, { recursive: p.recursive ?? true });
    return EMPTY;
  }),
  fsMethod(Method.fsGetMetadata, getMetadataParams, (p) => fs.getMetadata(p.path)),
  fsMethod(Method.fsReadDirectory, readDirectoryParams, async (p) => {
    return { entries: await fs.readDirectory(p.path) };
  }),
  fsMethod(Method.fsRemove, removeParams, async (p) => {
    await fs.remove(p.path, { recursive: p.recursive ?? true, force: p.force ?? true });
    return EMPTY;
  }),
  fsMethod(Method.fsCopy, copyParams, async (p) => {
    await fs.copy(p.sourcePath, p.destinationPath, { recursive: p.recursive });
    return EMPTY;
  }),
]);
