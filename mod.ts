/**
 * execbridge: run MCP stdio servers where the code lives.
 *
 * - {@link serve} starts an executor: a process and filesystem API as
 *   JSON-RPC 2.0 over WebSocket, each process in its own Web Worker.
 * - {@link connectExecutor} connects to one; {@link LocalExecBackend} offers
 *   the same {@link ExecBackend} interface without a server.
 *
 * Run as a program it is the `execbridge` CLI:
 * `deno run -A mod.ts serve | bridge | mcp …`.
 *
 * @example
 * ```ts
 * import { connectExecutor } from "@execbridge/execbridge";
 *
 * const executor = await connectExecutor("ws://127.0.0.1:8765");
 * const proc = await executor.start({ processId: "build", argv: ["make"], cwd: "/src" });
 * for await (const event of proc.events()) {
 *   if (event.type === "output") await Deno.stdout.write(event.chunk);
 *   if (event.type === "exited") console.error("exit code", event.exitCode);
 * }
 * await executor.close();
 * ```
 *
 * @module
 */

export { type Executor, serve, type ServeOptions } from "./src/server/serve.ts";
export {
  connectExecutor,
  type ConnectExecutorOptions,
  type ConnectionState,
  type ConnectionStateChange,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RESUME_WINDOW_MS,
  type ExecutorClient,
  type ExecutorTarget,
  type ReconnectOptions,
} from "./src/client/executor_client.ts";
export type { ProgramTarget } from "./src/transport/program_channel.ts";
export { LocalExecBackend, type LocalExecBackendOptions } from "./src/exec/local_backend.ts";
export type {
  ExecBackend,
  ExecProcess,
  ExecProcessEvent,
  ExitStatus,
  ReadOptions,
} from "./src/exec/types.ts";
export { DISCONNECTED_PREFIX, DisconnectedError } from "./src/rpc/rpc_client.ts";
export type { TextChannel } from "./src/transport/channel.ts";
export { lineChannel } from "./src/transport/line_channel.ts";
export {
  ENV_INHERIT,
  type EnvInherit,
  type EnvironmentInfo,
  type EnvPolicy,
  type OutputChunk,
  PROCESS_SIGNALS,
  PROCESS_STREAMS,
  type ProcessEvent,
  type ProcessSignal,
  type ProcessStream,
  type ReadResponse,
  type StartParams,
  TERMINATE_SIGNALS,
  type TerminateSignal,
  type WalkEntry,
  type WalkOptions,
  type WalkResult,
  WRITE_STATUSES,
  type WriteStatus,
} from "./src/protocol/types.ts";
export type { RemoteFetch } from "./src/client/remote_http.ts";
export {
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./src/log/logger.ts";
export * from "./src/protocol/errors.ts";
export {
  type DirectoryEntry,
  type ExecFileSystem,
  type FileMetadata,
  LocalFileSystem,
} from "./src/fs/mod.ts";

export {
  LocalStdioServerLauncher,
  type LocalStdioServerLauncherOptions,
  type StdioServerLauncher,
} from "./src/mcp/local_stdio.ts";
export {
  ExecutorProcessTransport,
  ExecutorStdioServerLauncher,
  type ExecutorStdioServerLauncherOptions,
} from "./src/mcp/executor_stdio.ts";
export type { EnvVarSpec, StdioServerCommand } from "./src/mcp/stdio_command.ts";
export {
  loadMcpConfig,
  type McpConfig,
  McpConfigError,
  type McpEnvironment,
  type McpEnvironmentConfig,
  type McpExecutorConfig,
  type McpServerConfig,
  parseMcpConfig,
} from "./src/mcp/config.ts";
export type {
  JsonRpcMessage,
  McpCallToolResult,
  McpContent,
  McpServerExit,
  McpServerTool,
  McpToolInputSchema,
  McpTransport,
} from "./src/mcp/types.ts";
export {
  DEFAULT_RESPAWN_POLICY,
  type RespawnPolicy,
  SERVER_EXITED_ERROR_CODE,
  type ServerExitEvent,
  type ServerRestartedEvent,
  ServerSupervisor,
  type ServerSupervisorEnd,
  type ServerSupervisorOptions,
  type SupervisedTransport,
} from "./src/mcp/server_supervisor.ts";
export {
  McpConnectionManager,
  type McpConnectionManagerOptions,
  type McpEnvironmentStatus,
  type McpServerState,
  type McpServerStatus,
  type McpTool,
  RequiredServerError,
} from "./src/mcp/connection_manager.ts";

if (import.meta.main) {
  const { runCli } = await import("./src/cli/main.ts");
  Deno.exit(await runCli(Deno.args));
}
