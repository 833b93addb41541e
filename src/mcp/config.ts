/**
 * MCP server configuration files.
 *
 * Two shapes are read, chosen by the file's extension:
 *
 * - `.json`: the `mcpServers` object used by Claude Desktop, Cursor and
 *   VS Code (VS Code's top-level `servers` key is accepted as an alias, and
 *   so are `//` and `/* *\/` comments and trailing commas, which VS Code
 *   allows in `mcp.json`), plus an optional `executor` object.
 * - `.toml`: Codex's `[mcp_servers.NAME]` tables, plus an optional
 *   `[executor]` table; named executors (`[[environments]]`) come from the
 *   `environments.toml` beside it (Codex's layout) or the file itself, and
 *   a server is placed on one with `environment_id`. JSON has a top-level
 *   `environments` array for the same.
 *
 * Both are validated with zod here, at the boundary, and normalized into the
 * plain {@link McpConfig} form; code past this module never sees raw config.
 * Snake_case keys are the contract; the camelCase spellings people put in
 * JSON (`envVars`, `startupTimeoutSec`, …) are accepted too. Unknown keys
 * are ignored.
 *
 * @module
 */

import { dirname, extname, isAbsolute, resolve } from "node:path";
import { readEnv } from "../util/env.ts";
import { expandHome } from "../util/home.ts";
import {
  checkExecutorUrl,
  describe,
  isRecord,
  parseEnvironments,
  parseExecutor,
  parseServer,
} from "./config_entries.ts";
import { errorMessage, parseJsonText, parseTomlText } from "./config_text.ts";
import {
  EXECUTOR_URL_ENV,
  type McpConfig,
  McpConfigError,
  type McpEnvironmentConfig,
  type McpServerConfig,
} from "./config_types.ts";

export * from "./config_types.ts";

const DEFAULT_SOURCE = "<inline MCP config>";

// ---------------------------------------------------------------------------
// public API

/**
 * Reads an MCP config file, choosing the format by extension: `.json` (or
 * `.jsonc`) in the `mcpServers` shape of Claude Desktop, Cursor and VS Code,
 * or `.toml` in Codex's `[mcp_servers.NAME]` shape. A relative
 * `executor.token_file` is resolved against the file's directory, and a
 * leading `~/` against `HOME` (from `options.env`, else the process
 * environment).
 *
 * @throws {McpConfigError} when the file cannot be read, has another
 * extension, is not valid JSON/TOML (the message carries the parser's line
 * and column), or describes a server that is invalid.
 *
 * @example
 * ```ts
 * import { loadMcpConfig, resolveExecutor, validatePlacement } from "./config.ts";
 *
 * const config = await loadMcpConfig("./mcp.toml");
 * const executor = resolveExecutor(config, { executor: undefined });
 * validatePlacement(config, executor);
 * for (const server of config.servers.filter((s) => s.enabled)) {
 *   console.log(server.name, server.environment, server.command ?? server.url);
 * }
 * ```
 */
export async function loadMcpConfig(
  path: string,
  options?: { env?: Record<string, string> },
): Promise<McpConfig> {
  const ext = extname(path).toLowerCase();
  const format = ext === ".json" || ext === ".jsonc" ? "json" : ext === ".toml" ? "toml" : null;
  if (format === null) {
    throw new McpConfigError(
      `unsupported MCP config file ${path}: expected a .json file (\`mcpServers\`) ` +
        `or a .toml file (\`[mcp_servers.NAME]\`)`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new McpConfigError(`MCP config file ${path} not found: check the path`, {
        cause: error,
      });
    }
    throw new McpConfigError(
      `cannot read MCP config file ${path}: ${
        errorMessage(error)
      }; check the path and its permissions`,
      { cause: error },
    );
  }
  // Codex keeps its named executors in environments.toml, beside config.toml.
  const beside = format === "toml" ? await readSiblingEnvironments(path) : [];
  const config = parseMcpConfig(text, { format, source: path, environments: beside });
  const tokenFile = config.executor?.tokenFile;
  if (config.executor && tokenFile !== undefined) {
    config.executor.tokenFile = resolveTokenFile(tokenFile, path, options?.env);
  }
  for (const environment of config.environments) {
    if (environment.tokenFile !== undefined) {
      environment.tokenFile = resolveTokenFile(
        environment.tokenFile,
        environment.source,
        options?.env,
      );
    }
    if (environment.tlsCa !== undefined) {
      environment.tlsCa = resolveTokenFile(environment.tlsCa, environment.source, options?.env);
    }
  }
  return config;
}

/**
 * Parses and validates the text of an MCP config (no I/O). `source` names the
 * config in error messages and becomes {@link McpConfig.source}.
 *
 * @throws {McpConfigError} for invalid JSON/TOML and invalid servers.
 *
 * @example
 * ```ts
 * import { parseMcpConfig } from "./config.ts";
 *
 * const config = parseMcpConfig('[mcp_servers.fs]\ncommand = "mcp-fs"\n', { format: "toml" });
 * console.log(config.servers[0].startupTimeoutMs); // 30000
 * ```
 */
export function parseMcpConfig(
  text: string,
  options: { format: "json" | "toml"; source?: string; environments?: McpEnvironmentConfig[] },
): McpConfig {
  const source = options.source ?? DEFAULT_SOURCE;
  const root = options.format === "json"
    ? parseJsonText(text, source)
    : parseTomlText(text, source);
  if (!isRecord(root)) {
    throw new McpConfigError(
      `${source}: the top level must be an object with an \`mcpServers\` key, got ${
        describe(root)
      }`,
    );
  }

  const tableKeys = options.format === "json" ? ["mcpServers", "servers"] : ["mcp_servers"];
  const servers: McpServerConfig[] = [];
  const seenIn = new Map<string, string>();
  for (const tableKey of tableKeys) {
    const table = root[tableKey];
    if (table === undefined || table === null) continue;
    if (!isRecord(table)) {
      throw new McpConfigError(
        `${source}: \`${tableKey}\` must be an object mapping server names to their settings, ` +
          `got ${describe(table)}`,
      );
    }
    for (const [name, raw] of Object.entries(table)) {
      const previous = seenIn.get(name);
      if (previous !== undefined) {
        throw new McpConfigError(
          `${source}: MCP server \`${name}\` is defined in both \`${previous}\` and ` +
            `\`${tableKey}\`; keep one`,
        );
      }
      seenIn.set(name, tableKey);
      servers.push(parseServer(name, raw, source));
    }
  }

  const own = root.environments === undefined || root.environments === null
    ? []
    : parseEnvironments(root.environments, source);
  const config: McpConfig = {
    servers,
    source,
    environments: [...own, ...options.environments ?? []],
  };
  const executor = root.executor;
  if (executor !== undefined && executor !== null) {
    config.executor = parseExecutor(executor, source);
  }
  checkEnvironments(config);
  return config;
}

/** The name of Codex's environments file, read beside a TOML config. */
export const ENVIRONMENTS_FILE = "environments.toml";

/** `[[environments]]` of the `environments.toml` beside `configPath`, if there is one. */
async function readSiblingEnvironments(configPath: string): Promise<McpEnvironmentConfig[]> {
  const path = resolve(dirname(configPath), ENVIRONMENTS_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw new McpConfigError(
      `cannot read ${path}: ${errorMessage(error)}; check its permissions`,
      { cause: error },
    );
  }
  const root = parseTomlText(text, path);
  if (!isRecord(root) || root.environments === undefined) return [];
  return parseEnvironments(root.environments, path);
}

/**
 * Environment ids are unique, and every server's `environment_id` names
 * one of them.
 */
function checkEnvironments(config: McpConfig): void {
  const byId = new Map<string, McpEnvironmentConfig>();
  for (const environment of config.environments) {
    const earlier = byId.get(environment.id);
    if (earlier !== undefined) {
      throw new McpConfigError(
        `environment \`${environment.id}\` is defined twice (in ${earlier.source} and ` +
          `${environment.source}); give each environment its own id`,
      );
    }
    byId.set(environment.id, environment);
  }
  for (const server of config.servers) {
    const id = server.environmentId;
    if (id === undefined || byId.has(id)) continue;
    const known = [...byId.keys()];
    throw new McpConfigError(
      `${config.source}: MCP server \`${server.name}\` has environment_id \`${id}\`, but no ` +
        `environment has that id (${
          known.length === 0 ? "none are defined" : `known: ${known.join(", ")}`
        }); add it to ${ENVIRONMENTS_FILE} or the config's environments, or fix the id`,
    );
  }
}

/**
 * Picks the executor for remote servers. The URL comes from, in order:
 * `options.executor` (`--executor`), `EXECBRIDGE_EXECUTOR_URL` in
 * `options.env` (the process environment when `env` is not given), the
 * config's `executor.url`; empty values count as unset. The token file is
 * `options.tokenFile` (`--token-file`), else the config's
 * `executor.token_file` unless the config's own `url` was overridden by
 * another source. Without a token file the client falls back to
 * `EXECBRIDGE_TOKEN`.
 *
 * @returns the executor, or `null` when no source names one.
 * @throws {McpConfigError} when the chosen URL is not a `ws://` or `wss://` URL.
 *
 * @example
 * ```ts
 * import { parseMcpConfig, resolveExecutor } from "./config.ts";
 *
 * const config = parseMcpConfig('{"executor": {"url": "ws://box:8765"}}', { format: "json" });
 * resolveExecutor(config, { env: {} }); // { url: "ws://box:8765" }
 * resolveExecutor(config, { executor: "ws://other:1", env: {} }); // { url: "ws://other:1" }
 * ```
 */
export function resolveExecutor(
  config: McpConfig,
  options: { executor?: string; tokenFile?: string; env?: Record<string, string> },
): { url: string; tokenFile?: string } | null {
  const envUrl = options.env ? options.env[EXECUTOR_URL_ENV] : readEnv(EXECUTOR_URL_ENV);
  const configUrl = config.executor?.url;
  let url: string;
  let origin: string;
  if (options.executor) {
    url = options.executor;
    origin = "--executor";
  } else if (envUrl) {
    url = envUrl;
    origin = EXECUTOR_URL_ENV;
  } else if (configUrl) {
    url = configUrl;
    origin = `executor.url in ${config.source}`;
  } else {
    return null;
  }
  checkExecutorUrl(url, origin);
  const configTokenFile = configUrl === undefined || configUrl === url
    ? config.executor?.tokenFile
    : undefined;
  const tokenFile = options.tokenFile || configTokenFile;
  return tokenFile ? { url, tokenFile } : { url };
}

/**
 * Checks that every enabled server can run where its config places it:
 * a `remote` server (stdio, or streamable HTTP reached through the
 * executor's network) needs an executor. Disabled servers are not checked.
 *
 * @throws {McpConfigError} naming the first server that cannot run.
 *
 * @example
 * ```ts
 * import { parseMcpConfig, validatePlacement } from "./config.ts";
 *
 * const config = parseMcpConfig(
 *   '[mcp_servers.fs]\ncommand = "mcp-fs"\nenvironment = "remote"\n',
 *   { format: "toml" },
 * );
 * validatePlacement(config, { url: "ws://box:8765" }); // ok
 * validatePlacement(config, null); // throws: requires an executor
 * ```
 */
export function validatePlacement(config: McpConfig, executor: { url: string } | null): void {
  for (const server of config.servers) {
    if (!server.enabled || server.environment !== "remote") continue;
    // Placed on a named environment: it needs that one, not the default executor.
    if (server.environmentId !== undefined) continue;
    if (executor === null) {
      throw new McpConfigError(
        `${config.source}: remote MCP server \`${server.name}\` requires an executor: ` +
          `pass --executor URL or set ${EXECUTOR_URL_ENV} (or set \`url\` in the config's ` +
          `executor section)`,
      );
    }
  }
}

/** Resolves `~/…` against HOME and a relative path against the config's directory. */
function resolveTokenFile(
  tokenFile: string,
  configPath: string,
  env: Record<string, string> | undefined,
): string {
  const expanded = expandHome(tokenFile, env);
  if (expanded.startsWith("~") || isAbsolute(expanded)) return expanded;
  return resolve(dirname(configPath), expanded);
}
