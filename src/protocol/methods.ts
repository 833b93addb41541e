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
  /** Request: signals a process group. */
  processTerminate: "process/terminate",
  /** Notification from the executor: a chunk of output. */
  processOutput: "process/output",
  /** Notification from the executor: the process exited. */
  processExited: "process/exited",
  /** Notification from the executor: the process exited and its streams ended. */
  processClosed: "process/closed",
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
} as const;

/** Any method or notification name of the protocol. */
export type MethodName = typeof Method[keyof typeof Method];
