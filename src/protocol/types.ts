/**
 * Wire types of the executor protocol: the params, results and notifications
 * of every JSON-RPC method, as plain TypeScript shapes. Validation of inbound
 * messages lives in `schemas.ts`; everything past the boundary uses these.
 *
 * @module
 */

/** The stream an output chunk came from. `pty` is used for every chunk of a `tty: true` process. */
export type ProcessStream = "stdout" | "stderr" | "pty";

/** Where a child's environment starts from when `envPolicy` is given. */
export type EnvInherit = "core" | "all" | "none";

/**
 * How the executor builds a child's environment from its own environment.
 * Applied in order: start set (`inherit`), default excludes (`*KEY*`,
 * `*SECRET*`, `*TOKEN*`) unless `ignoreDefaultExcludes`, `exclude`, `set`,
 * then `includeOnly` when non-empty. The request's `env` is laid over the result.
 */
export interface EnvPolicy {
  /** The start set: `core` (PATH, HOME, …), `all` (everything) or `none`. */
  inherit: EnvInherit;
  /** Keep variables whose names match `*KEY*`, `*SECRET*` or `*TOKEN*`. */
  ignoreDefaultExcludes: boolean;
  /** Case-insensitive glob patterns (`*`, `?`) of names to drop. */
  exclude: string[];
  /** Variables to set after the excludes. */
  set: Record<string, string>;
  /** When non-empty, only names matching one of these patterns survive. */
  includeOnly: string[];
}

/** Params of `initialize`. */
export interface InitializeParams {
  /** Free-form name of the client, for logs. */
  clientName: string;
  /** A session to re-attach to instead of creating a new one. */
  resumeSessionId?: string | null;
  /** Ask for binary `process/output` frames (an execbridge extension; WebSocket only). */
  binaryOutput?: boolean | null;
  /** Offer to send binary `process/write` frames (an execbridge extension; WebSocket only). */
  binaryWrites?: boolean | null;
}

/** Result of `initialize`. */
export interface InitializeResult {
  /** The session id (UUID v4); pass it as `resumeSessionId` to resume. */
  sessionId: string;
  /** True when output will arrive as binary frames. */
  binaryOutput?: boolean;
  /** True when the executor takes binary `process/write` frames. */
  binaryWrites?: boolean;
  /** True when `process/write` may be sent as a notification (no status answered). */
  writeNotifications?: boolean;
}

/** Params of `process/start`. */
export interface StartParams {
  /** Caller-chosen id, unique within the session while the process is retained. */
  processId: string;
  /** Program and arguments; `argv[0]` is looked up on PATH. Must not be empty. */
  argv: string[];
  /** Working directory on the executor host; defaults to the executor's own cwd. */
  cwd?: string | null;
  /** Environment. Without `envPolicy` the child gets exactly this map. */
  env?: Record<string, string> | null;
  /** Build the environment from the executor's own, then lay `env` over it. */
  envPolicy?: EnvPolicy | null;
  /** Run under a pseudo-terminal (output stream `pty`). */
  tty?: boolean;
  /** Give a non-tty child a writable stdin pipe (otherwise stdin is closed). */
  pipeStdin?: boolean;
  /** Override `argv[0]` as seen by the program. */
  arg0?: string | null;
}

/** Result of `process/start`. */
export interface StartResult {
  /** The id the process was started under. */
  processId: string;
}

/** Params of `process/read`. */
export interface ReadParams {
  /** The process to read. */
  processId: string;
  /** Return chunks with a seq greater than this (default 0). */
  afterSeq?: number;
  /** Byte budget; at least one chunk is always returned. */
  maxBytes?: number;
  /** Long-poll: wait up to this long for something new (default 0). */
  waitMs?: number;
}

/** One retained output chunk, as it appears in `process/read` results. */
export interface WireChunk {
  /** Sequence number of the chunk. */
  seq: number;
  /** Which stream produced it. */
  stream: ProcessStream;
  /** The bytes, standard base64. */
  chunk: string;
}

/** Result of `process/read`. */
export interface ReadResult {
  /** Chunks with `seq > afterSeq`, in seq order. */
  chunks: WireChunk[];
  /** Last returned seq + 1, or the next unassigned seq when no chunk was returned. */
  nextSeq: number;
  /** Whether the exit was observed. */
  exited: boolean;
  /** The exit code, or null before exit. -1 when killed by a signal. */
  exitCode: number | null;
  /** Whether the `closed` event was emitted. */
  closed: boolean;
  /** Set by clients when the transport failed; always null from the executor. */
  failure: string | null;
  /** Seq of the exit event, once exited (an execbridge extension). */
  exitSeq?: number | null;
  /** The signal that killed the process, once exited (an execbridge extension). */
  exitSignal?: string | null;
  /** Seq of the close event, once closed (an execbridge extension). */
  closedSeq?: number | null;
}

/** Params of `process/write`. */
export interface WriteParams {
  /** The process to write to. */
  processId: string;
  /** Bytes for the child's stdin, standard base64 (may be empty). */
  chunk: string;
  /** After these bytes, close the child's stdin (EOF). An execbridge extension. */
  closeStdin?: boolean;
}

/** Outcome of `process/write`. */
export type WriteStatus = "accepted" | "unknownProcess" | "stdinClosed" | "starting";

/** Result of `process/write`. */
export interface WriteResult {
  /** What happened to the bytes. */
  status: WriteStatus;
}

/** Signals `process/terminate` can send to a process group. */
export type TerminateSignal = "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGHUP";

/** Params of `process/terminate`. */
export interface TerminateParams {
  /** The process to signal (its whole process group). */
  processId: string;
  /** The signal (default SIGKILL, like the reference). An execbridge extension. */
  signal?: TerminateSignal;
}

/** Result of `process/terminate`. */
export interface TerminateResult {
  /** True when the process was running and has been killed. */
  running: boolean;
}

/** Params of the `process/output` notification. */
export interface OutputNotification {
  /** The process that wrote. */
  processId: string;
  /** Sequence number. */
  seq: number;
  /** Which stream. */
  stream: ProcessStream;
  /** The bytes, standard base64. */
  chunk: string;
}

/** Params of the `process/exited` notification. */
export interface ExitedNotification {
  /** The process that exited. */
  processId: string;
  /** Sequence number. */
  seq: number;
  /** Exit code; -1 when killed by a signal. */
  exitCode: number;
  /** Name of the signal that killed the process, when one did. */
  signal?: string | null;
}

/** Params of the `process/closed` notification. */
export interface ClosedNotification {
  /** The process whose streams ended after exit. */
  processId: string;
  /** Sequence number: the largest of the process. */
  seq: number;
}

/** Params of `fs/readFile`. */
export interface ReadFileParams {
  /** Absolute path. */
  path: string;
}

/** Result of `fs/readFile`. */
export interface ReadFileResult {
  /** File contents, standard base64. */
  dataBase64: string;
}

/** Params of `fs/writeFile`. */
export interface WriteFileParams {
  /** Absolute path; the parent must exist. */
  path: string;
  /** New contents, standard base64. */
  dataBase64: string;
}

/** Params of `fs/createDirectory`. */
export interface CreateDirectoryParams {
  /** Absolute path. */
  path: string;
  /** Create missing parents (default true). */
  recursive?: boolean;
}

/** Params of `fs/getMetadata`. */
export interface GetMetadataParams {
  /** Absolute path. */
  path: string;
}

/** Result of `fs/getMetadata`. */
export interface GetMetadataResult {
  /** True for a directory (symlinks followed). */
  isDirectory: boolean;
  /** True for a regular file (symlinks followed). */
  isFile: boolean;
  /** True when the path itself is a symlink. */
  isSymlink: boolean;
  /** Size in bytes (symlinks followed). */
  size: number;
  /** Creation time, Unix ms (0 when unavailable). */
  createdAtMs: number;
  /** Modification time, Unix ms (0 when unavailable). */
  modifiedAtMs: number;
}

/** Params of `fs/readDirectory`. */
export interface ReadDirectoryParams {
  /** Absolute path. */
  path: string;
}

/** One entry of `fs/readDirectory`. */
export interface DirectoryEntry {
  /** Name within the directory. */
  fileName: string;
  /** True for a directory (symlinks followed). */
  isDirectory: boolean;
  /** True for a regular file (symlinks followed). */
  isFile: boolean;
}

/** Result of `fs/readDirectory`. */
export interface ReadDirectoryResult {
  /** Entries, unsorted; entries whose stat fails are skipped. */
  entries: DirectoryEntry[];
}

/** Params of `fs/remove`. */
export interface RemoveParams {
  /** Absolute path; a symlink is removed itself, never its target. */
  path: string;
  /** Remove non-empty directories (default true). */
  recursive?: boolean;
  /** A missing path is not an error (default true). */
  force?: boolean;
}

/** Params of `fs/copy`. */
export interface CopyParams {
  /** Absolute source path. */
  sourcePath: string;
  /** Absolute destination path. */
  destinationPath: string;
  /** Required to copy a directory. */
  recursive: boolean;
}

/** The empty result of fs methods that return nothing. */
export type EmptyResult = Record<string, never>;
