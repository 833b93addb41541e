/**
 * zod schemas for every inbound wire message. They are used at the boundary
 * only (the executor's connection handler and the client's response decoder);
 * past it, code works with the plain types of `types.ts`.
 *
 * @module
 */

import { z } from "zod";
import { INVALID_PARAMS, RpcError } from "./errors.ts";

/**
 * Validates params against a schema; throws -32602 with a readable message
 * naming the offending fields.
 */
export function parseParams<T extends z.ZodType>(
  schema: T,
  params: unknown,
  options: { method: string },
): z.output<T> {
  const method = options.method;
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return `${path}${issue.message}`;
  });
  throw new RpcError(INVALID_PARAMS, `invalid params for ${method}: ${problems.join("; ")}`);
}

const seq = z.number().int().nonnegative();
const base64 = z.string();
const envMap = z.record(z.string(), z.string());
/** A path; the filesystem layer refuses relative ones with -32602 and a message naming the field. */
const absolutePath = z.string();

/** The JSON-RPC envelope, with or without `"jsonrpc": "2.0"`. */
export const envelopeSchema = z.object({
  jsonrpc: z.literal("2.0").optional(),
  id: z.union([z.number(), z.string(), z.null()]).optional(),
  method: z.string().optional(),
  params: z.unknown().optional(),
  result: z.unknown().optional(),
  error: z
    .object({ code: z.number(), message: z.string(), data: z.unknown().optional() })
    .optional(),
});

/** `initialize` params. */
export const initializeParams = z.object({
  clientName: z.string(),
  resumeSessionId: z.string().nullish(),
  /** Ask for binary `process/output` frames (an execbridge extension). */
  binaryOutput: z.boolean().nullish(),
  /** Offer binary `process/write` frames (an execbridge extension). */
  binaryWrites: z.boolean().nullish(),
});

/** `envPolicy` of `process/start`. Inner fields default like the reference's serde defaults. */
const patterns = z.array(z.string().max(256, "a pattern must be at most 256 characters")).max(
  256,
  "at most 256 patterns",
);
export const envPolicySchema = z.object({
  inherit: z.enum(["core", "all", "none"]),
  ignoreDefaultExcludes: z.boolean().default(false),
  exclude: patterns.default([]),
  set: envMap.default({}),
  includeOnly: patterns.default([]),
});

/** `process/start` params. */
export const startParams = z.object({
  processId: z.string().min(1, "processId must not be empty").max(
    1024,
    "processId must be at most 1024 characters",
  ),
  argv: z.array(z.string()).min(1, "argv must not be empty"),
  cwd: z.string().nullish(),
  env: envMap.nullish(),
  envPolicy: envPolicySchema.nullish(),
  tty: z.boolean().optional(),
  pipeStdin: z.boolean().optional(),
  arg0: z.string().nullish(),
});

/** `process/read` params. */
export const readParams = z.object({
  processId: z.string(),
  afterSeq: seq.nullish(),
  maxBytes: z.number().int().nonnegative().nullish(),
  waitMs: z.number().int().nonnegative().nullish(),
});

/** `process/write` params. */
export const writeParams = z.object({
  processId: z.string(),
  chunk: base64,
  closeStdin: z.boolean().nullish(),
});

/** `process/terminate` params. */
export const terminateParams = z.object({
  processId: z.string(),
  signal: z.enum(["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"]).nullish(),
});

/** The optional `sandbox` field of fs requests (only unsandboxed policies are supported). */
const sandbox = z.unknown().optional();

/** `fs/readFile` params. */
export const readFileParams = z.object({ path: absolutePath, sandbox });
/** `fs/writeFile` params. */
export const writeFileParams = z.object({ path: absolutePath, dataBase64: base64, sandbox });
/** `fs/createDirectory` params. */
export const createDirectoryParams = z.object({
  path: absolutePath,
  recursive: z.boolean().nullish(),
  sandbox,
});
/** `fs/getMetadata` params. */
export const getMetadataParams = z.object({ path: absolutePath, sandbox });
/** `fs/readDirectory` params. */
export const readDirectoryParams = z.object({ path: absolutePath, sandbox });
/** `fs/remove` params. */
export const removeParams = z.object({
  path: absolutePath,
  recursive: z.boolean().nullish(),
  force: z.boolean().nullish(),
  sandbox,
});
/** `fs/copy` params. */
export const copyParams = z.object({
  sourcePath: absolutePath,
  destinationPath: absolutePath,
  recursive: z.boolean(),
  sandbox,
});

/** Result schemas the client checks responses against. */
export const results = {
  initialize: z.object({
    sessionId: z.string(),
    binaryOutput: z.boolean().optional(),
    binaryWrites: z.boolean().optional(),
    writeNotifications: z.boolean().optional(),
  }),
  start: z.object({ processId: z.string() }),
  read: z.object({
    chunks: z.array(
      z.object({ seq, stream: z.enum(["stdout", "stderr", "pty"]), chunk: base64 }),
    ),
    nextSeq: seq,
    exited: z.boolean(),
    exitCode: z.number().int().nullable(),
    closed: z.boolean(),
    failure: z.string().nullable().optional(),
    exitSeq: seq.nullish(),
    exitSignal: z.string().nullish(),
    closedSeq: seq.nullish(),
  }),
  write: z.object({ status: z.enum(["accepted", "unknownProcess", "stdinClosed", "starting"]) }),
  terminate: z.object({ running: z.boolean() }),
  readFile: z.object({ dataBase64: base64 }),
  getMetadata: z.object({
    isDirectory: z.boolean(),
    isFile: z.boolean(),
    isSymlink: z.boolean(),
    size: z.number().optional(),
    createdAtMs: z.number(),
    modifiedAtMs: z.number(),
  }),
  readDirectory: z.object({
    entries: z.array(
      z.object({ fileName: z.string(), isDirectory: z.boolean(), isFile: z.boolean() }),
    ),
  }),
  empty: z.object({}),
};

/** Notification schemas the client checks inbound notifications against. */
export const notifications = {
  output: z.object({
    processId: z.string(),
    seq,
    stream: z.enum(["stdout", "stderr", "pty"]),
    chunk: base64,
  }),
  exited: z.object({
    processId: z.string(),
    seq,
    exitCode: z.number().int(),
    signal: z.string().nullish(),
  }),
  closed: z.object({ processId: z.string(), seq }),
};
