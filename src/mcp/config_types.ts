/**
 * The normalized form of an MCP config ({@link McpConfig}), the error that
 * any problem with one raises, and the defaults a config can leave out.
 *
 * @module
 */

/** Where an MCP server runs: here, or on the executor. */
export type McpEnvironment = "local" | "remote";

/** One MCP server from a config file, normalized. */
export interface McpServerConfig {
  /** The key of the server's entry; matches `^[a-zA-Z0-9_-]+$`. */
  name: string;
  /** `stdio` when `command` is set, `http` (streamable HTTP) when `url` is. */
  transport: "stdio" | "http";
  /** Program to run (stdio). */
  command?: string;
  /** Arguments (stdio); `[]` when absent. */
  args: string[];
  /** Literal environment values (stdio); they override everything else. */
  env: Record<string, string>;
  /**
   * Variables to pass through (stdio): `local` copies the caller's value,
   * `remote` inherits the executor host's value (remote servers only).
   */
  envVars: { name: string; source: "local" | "remote" }[];
  /** Working directory (stdio); on a remote server, a path on the executor. */
  cwd?: string;
  /** Streamable HTTP endpoint (http). */
  url?: string;
  /** Static HTTP headers (http), from `http_headers` or `headers`; `{}` when absent. */
  headers: Record<string, string>;
  /**
   * Placement, from `environment` or `experimental_environment`; `local` by
   * default, `remote` when `environmentId` is set.
   */
  environment: McpEnvironment;
  /**
   * The named executor it runs on (`environment_id`, an `id` of
   * {@link McpConfig.environments}); absent: the default executor for
   * `remote`, this machine for `local`.
   */
  environmentId?: string;
  /** Timeout for MCP `initialize` and for the first `tools/list`, each. */
  startupTimeoutMs: number;
  /** Timeout for one tool call. */
  toolTimeoutMs: number;
  /** `false` when `enabled = false` or `disabled: true`: the server is not started. */
  enabled: boolean;
  /** When true, a failure to start this server fails the whole command. */
  required: boolean;
  /** Allow-list of tool names, applied first. */
  enabledTools?: string[];
  /** Deny-list of tool names, applied after the allow-list. */
  disabledTools?: string[];
  /** Whether this server's tools may run concurrently (they are serialized by default). */
  supportsParallelToolCalls: boolean;
  /**
   * Whether a stdio server that exits unexpectedly is started again, keeping
   * the client's session (`respawn`, default true; false for http, where it
   * does not apply).
   */
  respawn: boolean;
  /** Restarts within 60 s before giving up on the server (`max_restarts`, default 5). */
  maxRestarts: number;
}

/**
 * A named executor (`[[environments]]` in Codex's `environments.toml`, or
 * the JSON config's `environments` array): a `ws://`/`wss://` URL, or a
 * program to start that speaks the protocol on its stdio (e.g. over ssh).
 */
export interface McpEnvironmentConfig {
  /** The id servers name in `environment_id`. */
  id: string;
  /** Its URL (`url`). */
  url?: string;
  /** The bearer token itself (`auth_bearer_token`, as Codex has it). */
  token?: string;
  /** A file holding the token (`token_file`), resolved against the config's directory. */
  tokenFile?: string;
  /** A PEM CA file for `wss://` (`tls_ca`). */
  tlsCa?: string;
  /** A program to start instead of a URL (`program`), with `args`, `env` and `cwd`. */
  program?: string;
  /** The program's arguments; `[]` when absent. */
  args: string[];
  /** Variables set for the program; `{}` when absent. */
  env: Record<string, string>;
  /** The program's working directory. */
  cwd?: string;
  /** `connect_timeout_sec`, in ms. */
  connectTimeoutMs?: number;
  /** `initialize_timeout_sec`, in ms. */
  initializeTimeoutMs?: number;
  /**
   * `resume_window_sec` (an execbridge key), in ms: how long a lost
   * connection is resumed, and the executor then tried again, before its
   * servers fail (default 30 s; docs/resilience.md).
   */
  resumeWindowMs?: number;
  /** The file the entry came from (for messages). */
  source: string;
}

/** The config's `executor` section: the default executor, for `environment = "remote"`. */
export interface McpExecutorConfig {
  /** Its URL (`url`). */
  url?: string;
  /** A file holding its token (`token_file`). */
  tokenFile?: string;
  /** `resume_window_sec`, in ms (as {@link McpEnvironmentConfig.resumeWindowMs}). */
  resumeWindowMs?: number;
}

/** A whole config file, normalized. */
export interface McpConfig {
  /** The servers, in file order (`mcpServers` before `servers` in JSON). */
  servers: McpServerConfig[];
  /**
   * The config's `executor` section, if any. {@link loadMcpConfig} resolves
   * a relative `tokenFile` against the config file's directory and expands
   * a leading `~`; {@link parseMcpConfig} keeps it as written.
   */
  executor?: McpExecutorConfig;
  /**
   * Named executors: the config's own (`[[environments]]`, JSON
   * `environments`) and, for a TOML config read by {@link loadMcpConfig},
   * those of the `environments.toml` beside it.
   */
  environments: McpEnvironmentConfig[];
  /** The file the config came from (or the `source` given to {@link parseMcpConfig}). */
  source: string;
}

/**
 * A config file that cannot be used. The message names the file and, where
 * there is one, the server, and says what to change.
 */
export class McpConfigError extends Error {
  /** Creates the error with a complete, user-facing message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "McpConfigError";
  }
}

/** `startup_timeout_sec` when the config does not set it: 30 s. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 30_000;
/** `tool_timeout_sec` when the config does not set it: 120 s. */
export const DEFAULT_TOOL_TIMEOUT_MS = 120_000;
/** The environment variable naming the executor when `--executor` is not given. */
export const EXECUTOR_URL_ENV = "EXECBRIDGE_EXECUTOR_URL";
