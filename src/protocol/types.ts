/**
 * The protocol's types that the public API uses, written out with their
 * documentation. `schemas.ts` checks each against the zod schema that
 * validates it on the wire (at compile time, both ways), so the two cannot
 * drift; wire shapes only the implementation uses are derived from the
 * schemas there (`z.infer`).
 *
 * @module
 */

/** The streams an output chunk can come from. */
export const PROCESS_STREAMS = ["stdout", "stderr", "pty"] as const;

/** The stream an output chunk came from. `pty` is used for every chunk of a `tty: true` process. */
export type ProcessStream = typeof PROCESS_STREAMS[number];

/** Where a child's environment can start from when `envPolicy` is given. */
export const ENV_INHERIT = ["core", "all", "none"] as const;

/** Where a child's environment starts from when `envPolicy` is given. */
export type EnvInherit = typeof ENV_INHERIT[number];

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
  /**
   * Run the process in a sandbox: the reference's sandbox context
   * (`{ permissions, cwd?, workspaceRoots? }`, see docs/protocol.md). The
   * executor enforces it with bubblewrap, or refuses the start (-32602).
   */
  sandbox?: unknown;
  /** The reference's managed network proxy: not run by execbridge, so `true` is refused. */
  enforceManagedNetwork?: boolean;
  /** Details of the managed network proxy (accepted and ignored unless enforced). */
  managedNetwork?: unknown;
  /** Free-form data about the process from the client (accepted and ignored). */
  metadata?: unknown;
}

/** What `process/write` can answer. */
export const WRITE_STATUSES = ["accepted", "unknownProcess", "stdinClosed", "starting"] as const;

/** Outcome of `process/write`. */
export type WriteStatus = typeof WRITE_STATUSES[number];

/** The signals `process/terminate` can send. */
export const TERMINATE_SIGNALS = ["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"] as const;

/** A signal `process/terminate` can send to a process group. */
export type TerminateSignal = typeof TERMINATE_SIGNALS[number];

/**
 * Why a process could not start, as `error.data.kind` of a -32603 from
 * `process/start` says (the reference's names): the program or the `cwd`
 * does not exist, may not be run, or anything else.
 */
export type SpawnErrorKind = "spawnNotFound" | "spawnPermissionDenied" | "spawnFailed";

/**
 * How a started process is confined, as `process/start` reports it. The
 * names are the reference's: `linuxSeccomp` is its name for the Linux
 * sandbox family, which execbridge implements with bubblewrap.
 */
export const SANDBOX_TYPES = [
  "none",
  "macosSeatbelt",
  "linuxSeccomp",
  "windowsRestrictedToken",
] as const;

/** One of {@link SANDBOX_TYPES}. */
export type SandboxType = typeof SANDBOX_TYPES[number];

/** The signals `process/signal` can send (`interrupt` is SIGINT). */
export const PROCESS_SIGNALS = ["interrupt"] as const;

/** A signal `process/signal` sends to a process group. */
export type ProcessSignal = typeof PROCESS_SIGNALS[number];

/**
 * What an executor says about its environment (`environment/info`, and in
 * the `initialize` result). Paths are `file://` URIs. Older executors send
 * only `shell`.
 */
export interface EnvironmentInfo {
  /** The user's shell on the executor host. */
  shell: { name: string; path: string };
  /** The executor's version. */
  executorVersion?: string;
  /** The executor's working directory (the default `cwd` of a process). */
  cwd?: string | null;
  /** The home directory of the user the executor runs as. */
  userHomeDir?: string | null;
  /** The host's operating system (`linux`, `darwin`, `windows`). */
  platformOs?: string;
  /** The directory for temporary files. */
  tempDir?: string | null;
  /** Directories the executor puts in front of a child's `PATH`. */
  prependPathDirs?: string[];
  /** Temporary directories the executor manages. */
  temporaryDirectories?: string[];
  /** What the executor supports, by the reference's capability names: true only where it does. */
  capabilities?: Record<string, boolean>;
}

/** One retained output chunk. */
export interface OutputChunk {
  /** Sequence number. */
  seq: number;
  /** Source stream. */
  stream: ProcessStream;
  /** The bytes (shared: do not modify). */
  chunk: Uint8Array;
}

/** Result of a read of a process's retained output (`process/read`). */
export interface ReadResponse {
  /** Chunks after `afterSeq`, in seq order. */
  chunks: OutputChunk[];
  /** Continue with `afterSeq: nextSeq - 1`. */
  nextSeq: number;
  /** Whether the exit was observed. */
  exited: boolean;
  /** Exit code once exited (128 + the signal's number when a signal killed it). */
  exitCode: number | null;
  /** Whether the process closed. */
  closed: boolean;
  /** Set by clients when the process can no longer be observed (transport lost). */
  failure: string | null;
  /** Seq of the exit event, once exited (execbridge executors only). */
  exitSeq?: number | null;
  /** The signal that killed the process, once exited (execbridge executors only). */
  exitSignal?: string | null;
  /** Seq of the close event, once closed (execbridge executors only). */
  closedSeq?: number | null;
  /** Sandboxed, failed, and most likely stopped by the sandbox (current-protocol executors). */
  sandboxDenied?: boolean;
}

/** A sequenced event of a process: its output, its exit and its close, in seq order. */
export type ProcessEvent =
  | {
    /** A chunk of output. */
    type: "output";
    /** Sequence number. */
    seq: number;
    /** Source stream. */
    stream: ProcessStream;
    /** The bytes (shared between subscribers: do not modify). */
    chunk: Uint8Array;
  }
  | {
    /** The process exited (output may still follow until `closed`). */
    type: "exited";
    /** Sequence number. */
    seq: number;
    /** Exit code; 128 + the signal's number when a signal killed it. */
    exitCode: number;
    /** The signal that killed it, if any. */
    signal: string | null;
    /** Set (true) when the process was sandboxed, failed, and most likely by the sandbox's doing. */
    sandboxDenied?: boolean;
  }
  | {
    /** Exit seen and both streams ended: the last event. */
    type: "closed";
    /** Sequence number (the largest). */
    seq: number;
  };

/** What `fs/getMetadata` reports. */
export interface FileMetadata {
  /** True for a directory (symlinks followed). */
  isDirectory: boolean;
  /** True for a regular file (symlinks followed). */
  isFile: boolean;
  /** True when the path itself is a symlink. */
  isSymlink: boolean;
  /** Size in bytes (symlinks followed; 0 from executors that do not report it). */
  size: number;
  /** Creation time, Unix ms (0 when unavailable). */
  createdAtMs: number;
  /** Modification time, Unix ms (0 when unavailable). */
  modifiedAtMs: number;
}

/** The bounds of `fs/walk`. */
export interface WalkOptions {
  /** Levels below the first to descend into (0: the directory's own entries only). */
  maxDepth: number;
  /** Most directory entries looked at; past it the walk stops, `truncated`. */
  maxEntries: number;
  /** Most directories read, the first included; past it the walk stops, `truncated`. */
  maxDirectories: number;
  /** List and descend into symlinks to directories (each directory once). */
  followDirectorySymlinks: boolean;
}

/** One file or directory `fs/walk` found. */
export interface WalkEntry {
  /** Its path (in the form the walk was asked with: URI or native). */
  path: string;
  /** `file` or `directory` (symlinks to files, broken symlinks and special files are left out). */
  kind: "file" | "directory";
}

/** What `fs/walk` found: breadth first, each directory's entries by name. */
export interface WalkResult {
  /** The files and directories. */
  entries: WalkEntry[];
  /** Directories below the first that could not be read. */
  errors: { path: string; message: string }[];
  /** True when a bound stopped the walk before it was done. */
  truncated: boolean;
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
