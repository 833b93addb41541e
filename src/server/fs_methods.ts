/**
 * `fs/*` methods: validated params in, {@link LocalFileSystem} does the work.
 * Only unsandboxed requests are served: a `sandbox` policy that asks for
 * restrictions is refused rather than silently ignored.
 *
 * @module
 */

import { LocalFileSystem } from "../fs/local_file_system.ts";
import { INVALID_PARAMS, INVALID_REQUEST, RpcError } from "../protocol/errors.ts";
import {
  copyParams,
  createDirectoryParams,
  getMetadataParams,
  parseParams,
  readDirectoryParams,
  readFileParams,
  removeParams,
  writeFileParams,
} from "../protocol/schemas.ts";
import type { MethodHandler } from "./methods.ts";

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

/** Handlers of the `fs/*` methods. */
export const fsMethods: Record<string, MethodHandler> = {
  async "fs/readFile"(params) {
    const p = parseParams(readFileParams, params, { method: "fs/readFile" });
    checkSandbox("fs/readFile", p.sandbox);
    return { dataBase64: (await fs.readFile(p.path)).toBase64() };
  },

  async "fs/writeFile"(params) {
    const p = parseParams(writeFileParams, params, { method: "fs/writeFile" });
    checkSandbox("fs/writeFile", p.sandbox);
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
  },

  async "fs/createDirectory"(params) {
    const p = parseParams(createDirectoryParams, params, { method: "fs/createDirectory" });
    checkSandbox("fs/createDirectory", p.sandbox);
    await fs.createDirectory(p.path, { recursive: p.recursive ?? true });
    return EMPTY;
  },

  async "fs/getMetadata"(params) {
    const p = parseParams(getMetadataParams, params, { method: "fs/getMetadata" });
    checkSandbox("fs/getMetadata", p.sandbox);
    return await fs.getMetadata(p.path);
  },

  async "fs/readDirectory"(params) {
    const p = parseParams(readDirectoryParams, params, { method: "fs/readDirectory" });
    checkSandbox("fs/readDirectory", p.sandbox);
    return { entries: await fs.readDirectory(p.path) };
  },

  async "fs/remove"(params) {
    const p = parseParams(removeParams, params, { method: "fs/remove" });
    checkSandbox("fs/remove", p.sandbox);
    await fs.remove(p.path, { recursive: p.recursive ?? true, force: p.force ?? true });
    return EMPTY;
  },

  async "fs/copy"(params) {
    const p = parseParams(copyParams, params, { method: "fs/copy" });
    checkSandbox("fs/copy", p.sandbox);
    await fs.copy(p.sourcePath, p.destinationPath, { recursive: p.recursive });
    return EMPTY;
  },
};
