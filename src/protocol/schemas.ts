/**
 * zod schemas for every message that crosses the wire: the params the
 * executor receives, and the results and notifications its clients
 * receive. They are used at the boundary only; past it, code works with the
 * types derived here (`z.infer`) or, for the public API, the documented
 * interfaces of `types.ts`, which {@link exactly} ties to their schemas.
 *
 * Long (~520 lines) on purpose: every wire schema in one file, by direction
 * (what the executor receives, sandbox requests, what clients receive), so
 * that the protocol reads in one place.
 *
 * @module
 */

import { z } from "zod";
import { Method } from "./methods.ts";
import { parseWirePath, type WirePath } from "./paths.ts";
import {
  type DirectoryEntry,
  ENV_INHERIT,
  type EnvironmentInfo,
  type EnvPolicy,
  type FileMetadata,
  PROCESS_SIGNALS,
  PROCESS_STREAMS,
  type ProcessEvent,
  type ReadResponse,
  SANDBOX_TYPES,
  type StartParams,
  TERMINATE_SIGNALS,
  WRITE_STATUSES,
} from "./types.ts";

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

/**
 * A path in a request: an absolute native path or a `file://` URI, parsed
 * into the native path and the form it came in (see `paths.ts`).
 */
const pathArg = z.string().transform((value, context): WirePath => {
  const path = parseWirePath(value);
  if ("error" in path) {
    context.addIssue({ code: "custom", message: path.error });
    return z.NEVER;
  }
  return path;
});

/** A path in a request, as the native absolute path. */
const nativePath = pathArg.transform((path) => path.native);

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
  /**
   * The client numbers its requests across the session, under this name it
   * chose (a random id), and repeats after a resume the calls it has no
   * answer for: answer each once (an execbridge extension; see
   * `src/server/call_log.ts`). Another name starts a new numbering.
   */
  resumableCalls: z.string().min(1).max(128).nullish(),
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
  cwd: nativePath.nullish(),
  env: envMap.nullish(),
  envPolicy: envPolicy.nullish(),
  tty: z.boolean().optional(),
  pipeStdin: z.boolean().optional(),
  arg0: z.string().nullish(),
  sandbox: z.unknown().optional(),
  enforceManagedNetwork: z.boolean().optional(),
  managedNetwork: z.unknown().optional(),
  metadata: z.unknown().optional(),
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
  /**
   * The write's idempotency key: a write whose id the process already took
   * is answered with its status and not applied again.
   */
  writeId: z.string().min(1, "writeId must not be empty").max(
    1024,
    "writeId must be at most 1024 characters",
  ).nullish(),
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

/** `process/signal` params. */
export const signalParams = z.object({
  /** The process to signal (its whole process group). */
  processId: z.string(),
  /** The signal, by the reference's name. */
  signal: z.enum(PROCESS_SIGNALS),
});

/** Params of a method that takes none (anything is accepted and ignored). */
export const noParams = z.unknown();

/** The optional `sandbox` field of fs requests (only unsandboxed policies are supported). */
const sandbox = z.unknown().optional();
const path = nativePath;

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
/** `fs/canonicalize` params (the answer keeps the path's form: URI or native). */
export const canonicalizeParams = z.object({ path: pathArg, sandbox });

const count = z.number().int().nonnegative();
/** `fs/walk` params. */
export const walkParams = z.object({
  /** Where to start (the answer's paths keep this form: URI or native). */
  path: pathArg,
  options: z.object({
    /** Levels below the first to descend into (0: the directory's own entries only). */
    maxDepth: count,
    /** Most entries returned; more make the answer `truncated`. */
    maxEntries: count,
    /** Most directories read; more make the answer `truncated`. */
    maxDirectories: count,
    /** List and descend into symlinks to directories (each directory once). */
    followDirectorySymlinks: z.boolean(),
  }),
  sandbox,
});

/** What `fs/open` opens a file for. */
const OPEN_MODES = ["read", "replace"] as const;
/** `fs/open` params. */
export const openParams = z.object({
  /** The caller's name for the handle, unique among the session's open handles. */
  handleId: z.string().min(1, "handleId must not be empty").max(
    1024,
    "handleId must be at most 1024 characters",
  ),
  path,
  /** `read` (default), or `replace`: the file is created or truncated and written in blocks. */
  mode: z.enum(OPEN_MODES).optional(),
  sandbox,
});
/** `fs/readBlock` params. */
export const readBlockParams = z.object({
  handleId: z.string(),
  /** Where the block starts. */
  offset: count,
  /** How many bytes at most (1 to 1 MiB). */
  len: count,
});
/** `fs/writeBlock` params. */
export const writeBlockParams = z.object({
  handleId: z.string(),
  /** Where the bytes go (a gap is filled with zeros). */
  offset: count,
  /** The bytes, standard base64. */
  chunk: base64Bytes,
});
/** `fs/close` params. */
export const closeParams = z.object({ handleId: z.string() });

/** `http/request` params. */
export const httpRequestParams = z.object({
  /** The HTTP method (`GET`, `POST`…). */
  method: z.string().regex(/^[A-Za-z]+$/, "method must be an HTTP method name such as GET"),
  /** An absolute `http://` or `https://` URL (checked by the handler, with its own message). */
  url: z.string(),
  /** Request headers, in order; repeated names are kept. */
  headers: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
  /** The request body, standard base64. */
  bodyBase64: base64Bytes.nullish(),
  /** Give up after this long (absent or null: the executor's own limit). */
  timeoutMs: count.nullish(),
  /** `follow` redirects, or `stop` at one (the default: redirects only when asked). */
  redirectPolicy: z.enum(["follow", "stop"]).optional(),
  /** The caller's id for `http/request/bodyDelta` notifications. */
  requestId: z.string().min(1, "requestId must not be empty"),
  /** Answer after the headers and stream the body as notifications. */
  streamResponse: z.boolean().optional(),
});

/** `http/request/cancel` params (an execbridge extension). */
export const httpCancelParams = z.object({ requestId: z.string() });

/** An `http/request`, decoded. */
export type HttpRequest = z.output<typeof httpRequestParams>;

// ---------------------------------------------------------------------------
// Sandbox requests (read into a plan by `src/sandbox/policy.ts`)

const sandboxNetwork = z.enum(["restricted", "enabled"]);
const sandboxAccess = z.enum(["read", "write", "deny", "none"]);
const sandboxPath = z.discriminatedUnion("type", [
  z.object({ type: z.literal("path"), path: z.string() }),
  z.object({ type: z.literal("glob_pattern"), pattern: z.string() }),
  z.object({
    type: z.literal("special"),
    value: z.object({
      kind: z.string(),
      subpath: z.string().nullish(),
      path: z.string().optional(),
    }),
  }),
]);
const sandboxEntry = z.object({ path: sandboxPath, access: sandboxAccess });
const sandboxFileSystem = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("restricted"),
    entries: z.array(sandboxEntry).default([]),
    glob_scan_max_depth: z.number().nullish(),
  }),
  z.object({ type: z.literal("unrestricted") }),
]);
const sandboxPermissions = z.discriminatedUnion("type", [
  z.object({ type: z.literal("managed"), file_system: sandboxFileSystem, network: sandboxNetwork }),
  z.object({ type: z.literal("disabled") }),
  z.object({ type: z.literal("external"), network: sandboxNetwork }),
]);

/** The `sandbox` of `process/start` (and of fs requests): the reference's sandbox context. */
export const sandboxContext = z.object({
  permissions: sandboxPermissions,
  cwd: z.string().nullish(),
  workspaceRoots: z.array(z.string()).optional(),
  windowsSandboxLevel: z.unknown().optional(),
  windowsSandboxPrivateDesktop: z.boolean().optional(),
  useLegacyLandlock: z.boolean().optional(),
});

/** A sandbox context, parsed. */
export type SandboxContext = z.output<typeof sandboxContext>;

/** The older protocol's fs `sandbox`: `{ sandboxPolicy: { type, … }, sandboxPolicyCwd? }`. */
export const legacySandbox = z.object({
  sandboxPolicy: z.object({
    type: z.string(),
    writable_roots: z.array(z.string()).optional(),
    network_access: z.boolean().optional(),
    exclude_tmpdir_env_var: z.boolean().optional(),
    exclude_slash_tmp: z.boolean().optional(),
  }),
  sandboxPolicyCwd: z.string().nullish(),
});

/** An fs `sandbox` of the older protocol, parsed. */
export type LegacySandbox = z.output<typeof legacySandbox>;

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
    sandboxDenied: z.boolean().optional(),
  }),
);

const environmentInfo = exactly<EnvironmentInfo>()(z.object({
  shell: z.object({ name: z.string(), path: z.string() }),
  executorVersion: z.string().optional(),
  cwd: z.string().nullish(),
  userHomeDir: z.string().nullish(),
  platformOs: z.string().optional(),
  tempDir: z.string().nullish(),
  prependPathDirs: z.array(z.string()).optional(),
  temporaryDirectories: z.array(z.string()).optional(),
  capabilities: z.record(z.string(), z.boolean()).optional(),
}));

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
    /** True when repeated calls are answered once (the client asked for `resumableCalls`). */
    resumableCalls: z.boolean().optional(),
    /** The executor's environment (executors of the reference's current protocol). */
    environmentInfo: environmentInfo.optional(),
  }),
  environmentInfo,
  environmentStatus: z.object({ status: z.string() }),
  canonicalize: z.object({ path: z.string() }),
  walk: z.object({
    entries: z.array(z.object({ path: z.string(), kind: z.enum(["file", "directory"]) })),
    errors: z.array(z.object({ path: z.string(), message: z.string() })),
    truncated: z.boolean(),
  }),
  open: z.object({ handleId: z.string() }),
  readBlock: z.object({ chunk: base64Bytes, eof: z.boolean() }),
  bodyDelta: z.object({
    requestId: z.string(),
    seq: z.number().int(),
    deltaBase64: base64Bytes,
    done: z.boolean(),
    error: z.string().nullish(),
  }),
  httpResponse: z.object({
    status: z.number().int(),
    headers: z.array(z.object({ name: z.string(), value: z.string() })),
    bodyBase64: base64Bytes,
  }),
  start: z.object({
    processId: z.string(),
    /** How the process is confined (current-protocol executors). */
    sandboxType: z.enum(SANDBOX_TYPES).optional(),
  }),
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
    sandboxDenied: z.boolean().optional(),
  }).transform(({ processId, seq, exitCode, signal, sandboxDenied }) => ({
    processId,
    event: {
      type: "exited",
      seq,
      exitCode,
      signal: signal ?? null,
      ...(sandboxDenied ? { sandboxDenied } : {}),
    } satisfies ProcessEvent as ProcessEvent,
  })),
  [Method.processClosed]: z.object({ processId: z.string(), seq }).transform((
    { processId, seq },
  ) => ({
    processId,
    event: { type: "closed", seq } satisfies ProcessEvent as ProcessEvent,
  })),
};
