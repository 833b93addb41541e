/**
 * The name of every JSON-RPC method and notification of the executor
 * protocol: the only place they are spelled. The server's method table
 * (`src/server/method_table.ts`) says which of them it implements.
 *
 * @module
 */

/** Method and notification names, by what they do. */
export const Method = {
  /** Request: opens or resumes a session. */
  initialize: "initialize",
  /** Notification from the client: the handshake is complete. */
  initialized: "initialized",
  /** Request: starts a process. */
  processStart: "process/start",
  /** Request: retained output after a seq (long-poll). */
  processRead: "process/read",
  /** Request (or, as an execbridge extension, notification): bytes for stdin. */
  processWrite: "process/write",
  /** Request: kills (or signals) a process group. */
  processTerminate: "process/terminate",
  /** Request: sends a signal (`interrupt`) to a process group. */
  processSignal: "process/signal",
  /** Notification from the executor: a chunk of output. */
  processOutput: "process/output",
  /** Notification from the executor: the process exited. */
  processExited: "process/exited",
  /** Notification from the executor: the process exited and its streams ended. */
  processClosed: "process/closed",
  /** Request: what the executor's environment is (shell, paths, version, capabilities). */
  environmentInfo: "environment/info",
  /** Request: whether the executor takes work (`ready`). */
  environmentStatus: "environment/status",
  /** Request: a whole file. */
  fsReadFile: "fs/readFile",
  /** Request: creates or truncates a file. */
  fsWriteFile: "fs/writeFile",
  /** Request: `mkdir` (`-p` by default). */
  fsCreateDirectory: "fs/createDirectory",
  /** Request: describes a path. */
  fsGetMetadata: "fs/getMetadata",
  /** Request: lists a directory. */
  fsReadDirectory: "fs/readDirectory",
  /** Request: removes a path. */
  fsRemove: "fs/remove",
  /** Request: copies a file, symlink or directory tree. */
  fsCopy: "fs/copy",
  /** Request: the canonical path (symlinks resolved). */
  fsCanonicalize: "fs/canonicalize",
  /** Request: the files and directories below a directory, breadth first, bounded. */
  fsWalk: "fs/walk",
  /** Request: opens a file handle (for reading, or replacing the file's contents). */
  fsOpen: "fs/open",
  /** Request: a block of an open file. */
  fsReadBlock: "fs/readBlock",
  /** Request: writes a block of an open file. */
  fsWriteBlock: "fs/writeBlock",
  /** Request: closes a file handle. */
  fsClose: "fs/close",
  /** Request: an HTTP request made by the executor. */
  httpRequest: "http/request",
  /** Notification from the executor: a piece of a streamed HTTP response body. */
  httpRequestBodyDelta: "http/request/bodyDelta",
  /** Request: stops a streamed HTTP response body early (an execbridge extension). */
  httpRequestCancel: "http/request/cancel",
} as const;

/** Any method or notification name of the protocol. */
export type MethodName = typeof Method[keyof typeof Method];
