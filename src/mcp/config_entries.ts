/**
 * One config file's entries, validated with zod and normalized: each
 * `[mcp_servers.NAME]` / `mcpServers.NAME` into an {@link McpServerConfig},
 * and the `executor` section. Other spellings of a key (camelCase, the
 * `experimental_` prefix) are folded into the snake_case one first, so that
 * messages can still name the key as the user wrote it.
 *
 * @module
 */

import type { z } from "zod";
import defer * as configSchemas from "./config_schemas.ts";
import { DEFAULT_RESPAWN_POLICY } from "./server_supervisor.ts";
import {
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_TOOL_TIMEOUT_MS,
  McpConfigError,
  type McpEnvironmentConfig,
  type McpExecutorConfig,
  type McpServerConfig,
} from "./config_types.ts";

const SERVER_NAME = /^[a-zA-Z0-9_-]+$/;

// ---------------------------------------------------------------------------
// other spellings of keys

/** Other spellings of an environment key, folded into the snake_case key. */
const ENVIRONMENT_ALIASES: Record<string, readonly string[]> = {
  auth_bearer_token: ["authBearerToken", "token"],
  token_file: ["tokenFile"],
  tls_ca: ["tlsCa"],
  connect_timeout_sec: ["connectTimeoutSec"],
  initialize_timeout_sec: ["initializeTimeoutSec"],
  resume_window_sec: ["resumeWindowSec"],
};

/** Other spellings of a server key, folded into the snake_case key. */
const SERVER_ALIASES: Record<string, readonly string[]> = {
  env_vars: ["envVars"],
  http_headers: ["headers", "httpHeaders"],
  environment: ["experimental_environment", "experimentalEnvironment"],
  environment_id: ["environmentId"],
  startup_timeout_sec: ["startupTimeoutSec"],
  startup_timeout_ms: ["startupTimeoutMs"],
  tool_timeout_sec: ["toolTimeoutSec"],
  enabled_tools: ["enabledTools"],
  disabled_tools: ["disabledTools"],
  supports_parallel_tool_calls: ["supportsParallelToolCalls"],
  max_restarts: ["maxRestarts"],
};

const EXECUTOR_ALIASES: Record<string, readonly string[]> = {
  token_file: ["tokenFile"],
  resume_window_sec: ["resumeWindowSec"],
};

// ---------------------------------------------------------------------------
// servers

/** Validates one server entry and normalizes it. */
export function parseServer(name: string, raw: unknown, source: string): McpServerConfig {
  if (!SERVER_NAME.test(name)) {
    throw new McpConfigError(
      `invalid MCP server name \`${name}\` in ${source}: use letters, digits, _ and -`,
    );
  }
  const fail = (problem: string): never => {
    throw new McpConfigError(`${source}: MCP server \`${name}\`: ${problem}`);
  };
  if (!isRecord(raw)) {
    return fail(`its settings must be an object (a table in TOML), got ${describe(raw)}`);
  }
  const { values, spelling } = foldAliases(raw, SERVER_ALIASES, fail);
  const parsed = configSchemas.serverSchema.safeParse(values);
  if (!parsed.success) {
    return fail(`invalid settings: ${formatIssues(parsed.error, spelling)}; fix these values`);
  }
  const s = parsed.data;
  const key = (canonical: string): string => spelling.get(canonical) ?? canonical;

  if (s.command !== undefined && s.url !== undefined) {
    return fail(
      "sets both `command` and `url`; keep `command` for a stdio server " +
        "or `url` for a streamable HTTP server",
    );
  }
  if (s.command === undefined && s.url === undefined) {
    return fail(
      "has neither `command` nor `url`; set `command` for a stdio server " +
        "or `url` for a streamable HTTP server",
    );
  }
  const transport = s.command !== undefined ? "stdio" : "http";

  if (s.environment_id !== undefined && s.environment === "local") {
    fail(
      `${key("environment_id")} \`${s.environment_id}\` places it on an executor, but ` +
        `${key("environment")} says \`local\`; remove one of them`,
    );
  }
  const environment = s.environment ?? (s.environment_id !== undefined ? "remote" : "local");
  if (environment !== "local" && environment !== "remote") {
    throw new McpConfigError(
      `${source}: unsupported environment \`${environment}\` for MCP server \`${name}\`; ` +
        "expected `local` or `remote`",
    );
  }

  if (transport === "http") {
    for (const field of ["args", "env", "env_vars", "cwd", "respawn", "max_restarts"] as const) {
      if (s[field] !== undefined) {
        fail(`${key(field)} is not supported for streamable_http; remove it or use \`command\``);
      }
    }
    if (!isHttpUrl(s.url)) {
      fail(`url \`${s.url}\` is not an http:// or https:// URL`);
    }
  } else if (s.http_headers !== undefined) {
    fail(`${key("http_headers")} is not supported for stdio; remove it or use \`url\``);
  }

  const envVars = (s.env_vars ?? []).map((entry): McpServerConfig["envVars"][number] => {
    const item = typeof entry === "string" ? { name: entry, source: undefined } : entry;
    const varSource = item.source ?? "local";
    if (varSource !== "local" && varSource !== "remote") {
      return fail(`unsupported env_vars source \`${varSource}\`; expected \`local\` or \`remote\``);
    }
    if (varSource === "remote" && environment === "local") {
      return fail(
        `env_vars entry \`${item.name}\` uses source \`remote\`, which requires remote MCP ` +
          "stdio; set `environment` to `remote` on the server or use source `local`",
      );
    }
    return { name: item.name, source: varSource };
  });

  const startupTimeoutMs = s.startup_timeout_sec !== undefined
    ? Math.round(s.startup_timeout_sec * 1000)
    : s.startup_timeout_ms ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const toolTimeoutMs = s.tool_timeout_sec !== undefined
    ? Math.round(s.tool_timeout_sec * 1000)
    : DEFAULT_TOOL_TIMEOUT_MS;

  const server: McpServerConfig = {
    name,
    transport,
    args: [...(s.args ?? [])],
    env: plainRecord(s.env),
    envVars,
    headers: plainRecord(s.http_headers),
    environment,
    startupTimeoutMs,
    toolTimeoutMs,
    enabled: (s.enabled ?? true) && !(s.disabled ?? false),
    required: s.required ?? false,
    supportsParallelToolCalls: s.supports_parallel_tool_calls ?? false,
    respawn: transport === "stdio" && (s.respawn ?? true),
    maxRestarts: s.max_restarts ?? DEFAULT_RESPAWN_POLICY.maxRestarts,
  };
  if (s.respawn === false && s.max_restarts !== undefined) {
    fail(
      `${key("max_restarts")} has no effect with \`respawn = false\`; remove one of them`,
    );
  }
  if (s.command !== undefined) server.command = s.command;
  if (s.environment_id !== undefined) server.environmentId = s.environment_id;
  if (s.cwd !== undefined) server.cwd = s.cwd;
  if (s.url !== undefined) server.url = s.url;
  if (s.enabled_tools !== undefined) server.enabledTools = [...s.enabled_tools];
  if (s.disabled_tools !== undefined) server.disabledTools = [...s.disabled_tools];
  return server;
}

/**
 * Validates an `environments` list (`[[environments]]` in TOML, an array in
 * JSON): each entry an id with a `url` or a `program` (not both).
 */
export function parseEnvironments(raw: unknown, source: string): McpEnvironmentConfig[] {
  if (!Array.isArray(raw)) {
    throw new McpConfigError(
      `${source}: \`environments\` must be a list of entries (\`[[environments]]\` in TOML), ` +
        `got ${describe(raw)}`,
    );
  }
  return raw.map((entry, index) => {
    const label = isRecord(entry) && typeof entry.id === "string"
      ? `environment \`${entry.id}\``
      : `environments[${index}]`;
    const fail = (problem: string): never => {
      throw new McpConfigError(`${source}: ${label}: ${problem}`);
    };
    if (!isRecord(entry)) {
      return fail(`must be an object (a table in TOML), got ${describe(entry)}`);
    }
    const { values, spelling } = foldAliases(entry, ENVIRONMENT_ALIASES, fail);
    const parsed = configSchemas.environmentSchema.safeParse(values);
    if (!parsed.success) {
      return fail(`invalid settings: ${formatIssues(parsed.error, spelling)}; fix these values`);
    }
    const e = parsed.data;
    if (e.url === undefined && e.program === undefined) {
      fail("has neither `url` nor `program`; set `url` (ws://HOST:PORT) or `program` and `args`");
    }
    if (e.url !== undefined && e.program !== undefined) {
      fail("sets both `url` and `program`; keep one");
    }
    if (e.url !== undefined) checkExecutorUrl(e.url, `environment \`${e.id}\` in ${source}`);
    const environment: McpEnvironmentConfig = {
      id: e.id,
      args: [...(e.args ?? [])],
      env: plainRecord(e.env),
      source,
    };
    if (e.url !== undefined) environment.url = e.url;
    if (e.auth_bearer_token !== undefined) environment.token = e.auth_bearer_token;
    if (e.token_file !== undefined) environment.tokenFile = e.token_file;
    if (e.tls_ca !== undefined) environment.tlsCa = e.tls_ca;
    if (e.program !== undefined) environment.program = e.program;
    if (e.cwd !== undefined) environment.cwd = e.cwd;
    if (e.connect_timeout_sec !== undefined) {
      environment.connectTimeoutMs = Math.round(e.connect_timeout_sec * 1000);
    }
    if (e.initialize_timeout_sec !== undefined) {
      environment.initializeTimeoutMs = Math.round(e.initialize_timeout_sec * 1000);
    }
    if (e.resume_window_sec !== undefined) {
      environment.resumeWindowMs = Math.round(e.resume_window_sec * 1000);
    }
    return environment;
  });
}

/** Validates the `executor` section. */
export function parseExecutor(raw: unknown, source: string): McpExecutorConfig {
  const fail = (problem: string): never => {
    throw new McpConfigError(`${source}: executor: ${problem}`);
  };
  if (!isRecord(raw)) return fail(`must be an object (a table in TOML), got ${describe(raw)}`);
  const { values, spelling } = foldAliases(raw, EXECUTOR_ALIASES, fail);
  const parsed = configSchemas.executorSchema.safeParse(values);
  if (!parsed.success) {
    return fail(`invalid settings: ${formatIssues(parsed.error, spelling)}; fix these values`);
  }
  const executor: McpExecutorConfig = {};
  if (parsed.data.url !== undefined) {
    checkExecutorUrl(parsed.data.url, `executor.url in ${source}`);
    executor.url = parsed.data.url;
  }
  if (parsed.data.token_file !== undefined) executor.tokenFile = parsed.data.token_file;
  if (parsed.data.resume_window_sec !== undefined) {
    executor.resumeWindowMs = Math.round(parsed.data.resume_window_sec * 1000);
  }
  return executor;
}

/**
 * Copies `raw` with every alias renamed to its canonical key and `null`
 * values dropped. Two spellings of one key with different values are an
 * error. `spelling` maps a canonical key to the key the user wrote, for
 * messages.
 */
function foldAliases(
  raw: Record<string, unknown>,
  aliases: Record<string, readonly string[]>,
  fail: (problem: string) => never,
): { values: Record<string, unknown>; spelling: Map<string, string> } {
  const values: Record<string, unknown> = {};
  const spelling = new Map<string, string>();
  const canonicalOf = new Map<string, string>();
  for (const [canonical, others] of Object.entries(aliases)) {
    for (const other of others) canonicalOf.set(other, canonical);
  }
  for (const [written, value] of Object.entries(raw)) {
    if (value === null || value === undefined) continue;
    const canonical = canonicalOf.get(written) ?? written;
    const earlier = spelling.get(canonical);
    if (earlier !== undefined) {
      if (JSON.stringify(values[canonical]) === JSON.stringify(value)) continue;
      fail(`sets both \`${earlier}\` and \`${written}\` to different values; keep one`);
    }
    values[canonical] = value;
    spelling.set(canonical, written);
  }
  return { values, spelling };
}

/** Renders zod issues as `path: message` items, with paths in the user's spelling. */
function formatIssues(error: z.ZodError, spelling: Map<string, string>): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String);
      if (path.length > 0) path[0] = spelling.get(path[0]) ?? path[0];
      return path.length > 0 ? `${path.join(".")}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

// ---------------------------------------------------------------------------
// small helpers

/** Throws, naming where it came from, unless `url` is a `ws://` or `wss://` URL. */
export function checkExecutorUrl(url: string, origin: string): void {
  let protocol: string | null = null;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = null;
  }
  if (protocol !== "ws:" && protocol !== "wss:") {
    throw new McpConfigError(
      `executor URL \`${url}\` from ${origin} is not a ws:// or wss:// URL ` +
        "(for example ws://127.0.0.1:8765, as printed by `serve`)",
    );
  }
}

function isHttpUrl(url: string | undefined): boolean {
  if (url === undefined) return false;
  try {
    const { protocol } = new URL(url);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/** True for a plain object (a JSON object or TOML table), not an array or a date. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** A copy with the ordinary prototype (TOML tables have none). */
function plainRecord(value: Record<string, string> | undefined): Record<string, string> {
  return value === undefined ? {} : Object.fromEntries(Object.entries(value));
}

/** What a value is, for messages ("an array", "a number"…). */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
