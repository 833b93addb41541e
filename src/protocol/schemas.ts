/**
 * zod schemas for every message that crosses the wire: the params the
 * executor receives, and the results and notifications its clients
 * receive. They are used at the boundary only; past it, code works with the
 * types derived here (`z.infer`) or, for the public API, the documented
 * interfaces of `types.ts`, which {@link exactly} ties to their schemas.
 *
 * @module
 */

import { z } from "zod";
import { INVALID_PARAMS, RpcError } from "./errors.ts";
import { Method } from "./methods.ts";
import {
  type DirectoryEntry,
  ENV_INHERIT,
  type EnvPolicy,
  type FileMetadata,
  PROCESS_STREAMS,
  type ProcessEvent,
  type ReadResponse,
  type StartParams,
  TERMINATE_SIGNALS,
  WRITE_STATUSES,
} from "./types.ts";

/**
 * Validates params against a schema; throws -32602 with a readable message
 * naming the offending fields.
 */
export function parseParams<T extends z.ZodType>(
  schema: T,
  params: unknown,
  options: { method: string },
): z.output<T> {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return `${path}${issue.message}`;
  });
  throw new RpcError(
    INVALID_PARAMS,
    `invalid params for ${options.method}: ${problems.join("; ")}`,
  );
}

type Flat<T> = { [K in keyof T]: T[K] };
type Equals<A, B> = (<V>() => V extends Flat<A> ? 1 : 2) extends
  (<V>() => V extends Flat<B> ? 1 : 2) ? true
  : false;

/**
 * Ties a documented type to its schema: `exactly<T>()(schema)` compiles only
 * when what the schema parses to is exactly `T`, so neither can change
 * without the other.
 */
function exactly<T>() {
  return <S extends z.ZodType>(
    schema: S & (Equals<z.output<S>, T> extends true ? unknown : { "differs from": z.output<S> }),
  ): S => schema;
}

const seq = z.number().int().nonnegative();
const envMap = z.record(z.string(), z.string());
const stream = z.enum(PROCESS_STREAMS);

/** Standard base64 on the wire, bytes once parsed. */
const base64Bytes = z.string().transform((text, context): Uint8Array => {
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    context.addIssue({ code: "custom", message: "must be standard base64" });
    return z.NEVER;
  }
});

/**
 * Bytes in a request: base64 text from JSON, or bytes already (a binary
 * frame decoded at the edge goes through the same schema).
 */
const requestBytes = z.union([z.instanceof(Uint8Array), base64Bytes]);

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

// ---------------------------------------------------------------------------
// What the executor receives

/** `initialize` params. */
export const initializeParams = z.object({
  /** Free-form name of the client, for logs. */
  clientName: z.string(),
  /** A session to re-attach to instead of creating a new one. */
  resumeSessionId: z.string().nullish(),
  /** Ask for binary `process/output` frames (an execbridge extension; WebSocket only). */
  binaryOutput: z.boolean().nullish(),
  /** Offer binary `process/write` frames (an execbridge extension; WebSocket only). */
  binaryWrites: z.boolean().nullish(),
});

/** Params of `initialize`. */
export type InitializeParams = z.input<typeof initializeParams>;

const patterns = z.array(z.string().max(256, "a pattern must be at most 256 characters")).max(
  256,
  "at most 256 patterns",
);

/** `envPolicy` of `process/start`. Inner fields default like the reference's serde defaults. */
const envPolicy = exactly<EnvPolicy>()(z.object({
  inherit: z.enum(ENV_INHERIT),
  ignoreDefaultExcludes: z.boolean().default(false),
  exclude: patterns.default([]),
  set: envMap.default({}),
  includeOnly: patterns.default([]),
}));

/** `process/start` params. */
export const startParams = exactly<StartParams>()(z.object({
  processId: z.string().min(1, "processId must not be empty").max(
    1024,
    "processId must be at most 1024 characters",
  ),
  argv: z.array(z.string()).min(1, "argv must not be empty"),
  cwd: z.string().nullish(),
  env: envMap.nullish(),
  envPolicy: envPolicy.nullish(),
  tty: z.boolean().optional(),
  pipeStdin: z.boolean().optional(),
  arg0: z.string().nullish(),
}));

/** `process/read` params. */
export const readParams = z.object({
  /** The process to read. */
  processId: z.string(),
  /** Return chunks with a seq greater than this (default 0). */
  afterSeq: seq.nullish(),
  /** Byte budget; at least one chunk is always returned. */
  maxBytes: z.number().int().nonnegative().nullish(),
  /** Long-poll: wait up to this long for something new (default 0). */
  waitMs: z.number().int().nonnegative().nullish(),
});

/** Params of `process/read` as a client sends them. */
export type ReadParams = z.input<typeof readParams>;

/**
 * `process/write` params: `chunk` is base64 in JSON, raw bytes from a binary
 * write frame; either way it parses to bytes.
 */
export const writeParams = z.object({
  /** The process to write to. */
  processId: z.string(),
  /** Bytes for the child's stdin (may be empty). */
  chunk: requestBytes,
  /** After these bytes, close the child's stdin (EOF). An execbridge extension. */
  closeStdin: z.boolean().nullish(),
});

/** A `process/write` request, decoded. */
export type WriteRequest = z.output<typeof writeParams>;

/** `process/terminate` params. */
export const terminateParams = z.object({
  /** The process to signal (its whole process group). */
  processId: z.string(),
  /** The signal (default SIGKILL, like the reference). An execbridge extension. */
  signal: z.enum(TERMINATE_SIGNALS).nullish(),
});

/** Params of `process/terminate` as a client sends them. */
export type TerminateParams = z.input<typeof terminateParams>;

/** The optional `sandbox` field of fs requests (only unsandboxed policies are supported). */
const sandbox = z.unknown().optional();
/** A path; the filesystem layer refuses relative ones with -32602 and a message naming the field. */
const path = z.string();

/** `fs/readFile` params. */
export const readFileParams = z.object({ path, sandbox });
/** `fs/writeFile` params. */
export const writeFileParams = z.object({ path, dataBase64: z.string(), sandbox });
/** `fs/createDirectory` params. */
export const createDirectoryParams = z.object({
  path,
  /** Create missing parents (default true). */
  recursive: z.boolean().nullish(),
  sandbox,
});
/** `fs/getMetadata` params. */
export const getMetadataParams = z.object({ path, sandbox });
/** `fs/readDirectory` params. */
export const readDirectoryParams = z.object({ path, sandbox });
/** `fs/remove` params. */
export const removeParams = z.object({
  path,
  /** Remove non-empty directories (default true). */
  recursive: z.boolean().nullish(),
  /** A missing path is not an error (default true). */
  force: z.boolean().nullish(),
  sandbox,
});
/** `fs/copy` params. */
export const copyParams = z.object({
  sourcePath: path,
  destinationPath: path,
  /** Required to copy a directory. */
  recursive: z.boolean(),
  sandbox,
});

// ---------------------------------------------------------------------------
// What clients receive

const readResponse = exactly<Omit<ReadResponse, "failure"> & { failure?: string | null }>()(
  z.object({
    chunks: z.array(z.object({ seq, stream, chunk: base64Bytes })),
    nextSeq: seq,
    exited: z.boolean(),
    exitCode: z.number().int().nullable(),
    closed: z.boolean(),
    failure: z.string().nullish(),
    exitSeq: seq.nullish(),
    exitSignal: z.string().nullish(),
    closedSeq: seq.nullish(),
  }),
);

/** Result schemas the client checks responses against. */
export const results = {
  initialize: z.object({
    /** The session id (UUID v4); pass it as `resumeSessionId` to resume. */
    sessionId: z.string(),
    /** True when output will arrive as binary frames. */
    binaryOutput: z.boolean().optional(),
    /** True when the executor takes binary `process/write` frames. */
    binaryWrites: z.boolean().optional(),
    /** True when `process/write` may be sent as a notification (no status answered). */
    writeNotifications: z.boolean().optional(),
  }),
  start: z.object({ processId: z.string() }),
  read: readResponse.transform((r): ReadResponse => ({ ...r, failure: r.failure ?? null })),
  write: z.object({ status: z.enum(WRITE_STATUSES) }),
  terminate: z.object({ running: z.boolean() }),
  readFile: z.object({ dataBase64: base64Bytes }),
  getMetadata: exactly<Omit<FileMetadata, "size"> & { size?: number }>()(z.object({
    isDirectory: z.boolean(),
    isFile: z.boolean(),
    isSymlink: z.boolean(),
    size: z.number().optional(),
    createdAtMs: z.number(),
    modifiedAtMs: z.number(),
  })),
  readDirectory: z.object({
    entries: z.array(
      exactly<DirectoryEntry>()(
        z.object({ fileName: z.string(), isDirectory: z.boolean(), isFile: z.boolean() }),
      ),
    ),
  }),
};

/** Result of `initialize`. */
export type InitializeResult = z.output<typeof results.initialize>;
/** Result of `process/start`. */
export type StartResult = z.output<typeof results.start>;
/** Result of `process/write`. */
export type WriteResult = z.output<typeof results.write>;
/** Result of `process/terminate`. */
export type TerminateResult = z.output<typeof results.terminate>;

/**
 * Process notifications the client routes, each parsed into the event it
 * carries (and the process it is for).
 */
export const notifications = {
  [Method.processOutput]: z.object({ processId: z.string(), seq, stream, chunk: base64Bytes })
    .transform(({ processId, ...event }) => ({
      processId,
      event: { type: "output", ...event } satisfies ProcessEvent as ProcessEvent,
    })),
  [Method.processExited]: z.object({
    processId: z.string(),
    seq,
    exitCode: z.number().int(),
    signal: z.string().nullish(),
  }).transform(({ processId, seq, exitCode, signal }) => ({
    processId,
    event: {
      type: "exited",
      seq,
      exitCode,
      signal: signal ?? null,
    } satisfies ProcessEvent as ProcessEvent,
  })),
  [Method.processClosed]: z.object({ processId: z.string(), seq }).transform((
    { processId, seq },
  ) => ({
    processId,
    event: { type: "closed", seq } satisfies ProcessEvent as ProcessEvent,
  })),
};
