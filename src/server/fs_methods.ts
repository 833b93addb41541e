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

/** Handlers of the `fs/*` methods, by name. */
export const fsMethods: Record<string, SessionMethod> = {
  [Method.fsReadFile]: sessionMethod({
    family: "filesystem",
    params: readFileParams,
    async run(p) {
      checkSandbox(Method.fsReadFile, p.sandbox);
      return { dataBase64: (await fs.readFile(p.path)).toBase64() };
    },
  }),

  [Method.fsWriteFile]: sessionMethod({
    family: "filesystem",
    params: writeFileParams,
    async run(p) {
      checkSandbox(Method.fsWriteFile, p.sandbox);
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
  }),

  [Method.fsCreateDirectory]: sessionMethod({
    family: "filesystem",
    params: createDirectoryParams,
    async run(p) {
      checkSandbox(Method.fsCreateDirectory, p.sandbox);
      await fs.createDirectory(p.path, { recursive: p.recursive ?? true });
      return EMPTY;
    },
  }),

  [Method.fsGetMetadata]: sessionMethod({
    family: "filesystem",
    params: getMetadataParams,
    async run(p) {
      checkSandbox(Method.fsGetMetadata, p.sandbox);
      return await fs.getMetadata(p.path);
    },
  }),

  [Method.fsReadDirectory]: sessionMethod({
    family: "filesystem",
    params: readDirectoryParams,
    async run(p) {
      checkSandbox(Method.fsReadDirectory, p.sandbox);
      return { entries: await fs.readDirectory(p.path) };
    },
  }),

  [Method.fsRemove]: sessionMethod({
    family: "filesystem",
    params: removeParams,
    async run(p) {
      checkSandbox(Method.fsRemove, p.sandbox);
      await fs.remove(p.path, { recursive: p.recursive ?? true, force: p.force ?? true });
      return EMPTY;
    },
  }),

  [Method.fsCopy]: sessionMethod({
    family: "filesystem",
    params: copyParams,
    async run(p) {
      checkSandbox(Method.fsCopy, p.sandbox);
      await fs.copy(p.sourcePath, p.destinationPath, { recursive: p.recursive });
      return EMPTY;
    },
  }),
};
