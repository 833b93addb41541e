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
 *   `[executor]` table.
 *
 * Both are validated with zod here, at the boundary, and normalized into the
 * plain {@link McpConfig} form; code past this module never sees raw config.
 * Snake_case keys are the contract; the camelCase spellings people put in
 * JSON (`envVars`, `startupTimeoutSec`, …) are accepted too. Unknown keys
 * are ignored.
 *
 * @module
 */

import { z } from "zod";
import { parse as parseToml, TomlError } from "smol-toml";
import { dirname, extname, isAbsolute, resolve } from "node:path";
import { readEnv } from "../util/env.ts";
import { expandHome } from "../util/home.ts";

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
  /** Placement, from `environment` or `experimental_environment`; `local` by default. */
  environment: McpEnvironment;
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
  executor?: { url?: string; tokenFile?: string };
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

const SERVER_NAME = /^[a-zA-Z0-9_-]+$/;
const DEFAULT_SOURCE = "<inline MCP config>";

// ---------------------------------------------------------------------------
// zod schemas (boundary only)

const stringList = z.array(z.string());
const stringMap = z.record(z.string(), z.string());
const seconds = z.number().positive();
const envVarEntry = z.union([
  z.string().min(1),
  z.object({ name: z.string().min(1), source: z.string().optional() }),
], { error: "expected a variable name or an object with `name` and optional `source`" });

/** One server entry, after aliases were folded into their snake_case keys. */
const serverSchema = z.object({
  command: z.string().min(1).optional(),
  args: stringList.optional(),
  env: stringMap.optional(),
  env_vars: z.array(envVarEntry).optional(),
  cwd: z.string().min(1).optional(),
  url: z.string().min(1).optional(),
  http_headers: stringMap.optional(),
  environment: z.string().optional(),
  startup_timeout_sec: seconds.optional(),
  startup_timeout_ms: z.number().int().positive().optional(),
  tool_timeout_sec: seconds.optional(),
  enabled: z.boolean().optional(),
  disabled: z.boolean().optional(),
  required: z.boolean().optional(),
  enabled_tools: stringList.optional(),
  disabled_tools: stringList.optional(),
  supports_parallel_tool_calls: z.boolean().optional(),
});

const executorSchema = z.object({
  url: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
});

/** Other spellings of a server key, folded into the snake_case key. */
const SERVER_ALIASES: Record<string, readonly string[]> = {
  env_vars: ["envVars"],
  http_headers: ["headers", "httpHeaders"],
  environment: ["experimental_environment", "experimentalEnvironment"],
  startup_timeout_sec: ["startupTimeoutSec"],
  startup_timeout_ms: ["startupTimeoutMs"],
  tool_timeout_sec: ["toolTimeoutSec"],
  enabled_tools: ["enabledTools"],
  disabled_tools: ["disabledTools"],
  supports_parallel_tool_calls: ["supportsParallelToolCalls"],
};

const EXECUTOR_ALIASES: Record<string, readonly string[]> = {
  token_file: ["tokenFile"],
};

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
  const config = parseMcpConfig(text, { format, source: path });
  const tokenFile = config.executor?.tokenFile;
  if (config.executor && tokenFile !== undefined) {
    config.executor.tokenFile = resolveTokenFile(tokenFile, path, options?.env);
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
  options: { format: "json" | "toml"; source?: string },
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

  const config: McpConfig = { servers, source };
  const executor = root.executor;
  if (executor !== undefined && executor !== null) {
    config.executor = parseExecutor(executor, source);
  }
  return config;
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
 * a `remote` server needs an executor, and remote streamable HTTP servers
 * are not supported. Disabled servers are not checked.
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
    if (server.transport === "http") {
      throw new McpConfigError(
        `${config.source}: remote streamable HTTP MCP server \`${server.name}\` is not supported ` +
          `yet; run it locally or use a stdio server`,
      );
    }
    if (executor === null) {
      throw new McpConfigError(
        `${config.source}: remote MCP server \`${server.name}\` requires an executor: ` +
          `pass --executor URL or set ${EXECUTOR_URL_ENV} (or set \`url\` in the config's ` +
          `executor section)`,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// servers

/** Validates one server entry and normalizes it. */
function parseServer(name: string, raw: unknown, source: string): McpServerConfig {
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
  const parsed = serverSchema.safeParse(values);
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

  const environment = s.environment ?? "local";
  if (environment !== "local" && environment !== "remote") {
    throw new McpConfigError(
      `${source}: unsupported environment \`${environment}\` for MCP server \`${name}\`; ` +
        "expected `local` or `remote`",
    );
  }

  if (transport === "http") {
    for (const field of ["args", "env", "env_vars", "cwd"] as const) {
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
  };
  if (s.command !== undefined) server.command = s.command;
  if (s.cwd !== undefined) server.cwd = s.cwd;
  if (s.url !== undefined) server.url = s.url;
  if (s.enabled_tools !== undefined) server.enabledTools = [...s.enabled_tools];
  if (s.disabled_tools !== undefined) server.disabledTools = [...s.disabled_tools];
  return server;
}

/** Validates the `executor` section. */
function parseExecutor(raw: unknown, source: string): { url?: string; tokenFile?: string } {
  const fail = (problem: string): never => {
    throw new McpConfigError(`${source}: executor: ${problem}`);
  };
  if (!isRecord(raw)) return fail(`must be an object (a table in TOML), got ${describe(raw)}`);
  const { values, spelling } = foldAliases(raw, EXECUTOR_ALIASES, fail);
  const parsed = executorSchema.safeParse(values);
  if (!parsed.success) {
    return fail(`invalid settings: ${formatIssues(parsed.error, spelling)}; fix these values`);
  }
  const executor: { url?: string; tokenFile?: string } = {};
  if (parsed.data.url !== undefined) {
    checkExecutorUrl(parsed.data.url, `executor.url in ${source}`);
    executor.url = parsed.data.url;
  }
  if (parsed.data.token_file !== undefined) executor.tokenFile = parsed.data.token_file;
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
// text formats

/** Parses JSON, tolerating the comments and trailing commas VS Code allows. */
function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(stripJsonExtensions(text));
  } catch (error) {
    throw new McpConfigError(
      `${source}: invalid JSON: ${errorMessage(error)}; fix the syntax there`,
      { cause: error },
    );
  }
}

/** Parses TOML; the message carries smol-toml's line, column and excerpt. */
function parseTomlText(text: string, source: string): unknown {
  try {
    return parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const [first, ...rest] = error.message.split("\n\n");
      const reason = first.replace(/^Invalid TOML document:\s*/, "");
      const excerpt = rest.join("\n\n").trimEnd();
      throw new McpConfigError(
        `${source}: invalid TOML at line ${error.line}, column ${error.column}: ${reason}` +
          (excerpt ? `\n${excerpt}` : ""),
        { cause: error },
      );
    }
    throw new McpConfigError(`${source}: invalid TOML: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Blanks out `//` and `/* *\/` comments and trailing commas outside strings,
 * keeping every other character (and so the parser's line and column) where
 * it was. Valid JSON comes back unchanged.
 */
function stripJsonExtensions(text: string): string {
  const blank = (s: string): string => s.replace(/[^\r\n]/g, " ");
  let withoutComments = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      withoutComments += text.slice(i, end);
      i = end;
    } else if (c === "/" && text[i + 1] === "/") {
      let end = text.indexOf("\n", i);
      if (end === -1) end = text.length;
      withoutComments += blank(text.slice(i, end));
      i = end;
    } else if (c === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      const end = close === -1 ? text.length : close + 2;
      withoutComments += blank(text.slice(i, end));
      i = end;
    } else {
      withoutComments += c;
      i++;
    }
  }
  let out = "";
  i = 0;
  while (i < withoutComments.length) {
    const c = withoutComments[i];
    if (c === '"') {
      const end = stringEnd(withoutComments, i);
      out += withoutComments.slice(i, end);
      i = end;
      continue;
    }
    if (c === ",") {
      let j = i + 1;
      while (j < withoutComments.length && /\s/.test(withoutComments[j])) j++;
      const next = withoutComments[j];
      out += next === "}" || next === "]" ? " " : ",";
    } else {
      out += c;
    }
    i++;
  }
  return out;
}

/** The index just past the JSON string that starts at `start` (a `"`). */
function stringEnd(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length && text[j] !== '"' && text[j] !== "\n") {
    j += text[j] === "\\" ? 2 : 1;
  }
  return Math.min(j + 1, text.length);
}

// ---------------------------------------------------------------------------
// small helpers

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

function checkExecutorUrl(url: string, origin: string): void {
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

/** A copy with the ordinary prototype (TOML tables have none). */
function plainRecord(value: Record<string, string> | undefined): Record<string, string> {
  return value === undefined ? {} : Object.fromEntries(Object.entries(value));
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
