/**
 * A temporary CODEX_HOME for one run of the real Codex: `config.toml` (the
 * scripted model as a custom Responses provider, approval policy, sandbox,
 * MCP servers placed on the executor's environment) and `environments.toml`
 * (the executor: id, url, bearer token, timeouts).
 *
 * Never the user's ~/.codex: every run gets a fresh directory, removed by
 * `remove()`.
 *
 * @module
 */

import { HOMES_ROOT, MARKER, RUN_ID, tempDir } from "./processes.ts";

/** The environment id the harness gives the executor. */
export const ENVIRONMENT_ID = "interop";
/** The variable that carries the scripted model's dummy API key. */
export const MODEL_KEY_ENV = "CODEX_INTEROP_MODEL_KEY";

/** server-everything's entry point (installed by `deno task e2e-servers`). */
export const EVERYTHING_SERVER = new URL(
  "../e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
  import.meta.url,
).pathname;

/** A stdio MCP server entry. */
export interface StdioMcpServer {
  name: string;
  command: string;
  args?: string[];
  /** Working directory on the executor (required for a server placed on an environment). */
  cwd?: string;
  /** Literal variables (`env`). */
  env?: Record<string, string>;
  /** Names copied from Codex's own environment (`env_vars`). */
  envVars?: (string | { name: string; source: "local" | "remote" })[];
  /** Environment id (default: the executor's); `null` = local. */
  environmentId?: string | null;
  startupTimeoutSec?: number;
  toolTimeoutSec?: number;
}

/** A streamable HTTP MCP server entry. */
export interface HttpMcpServer {
  name: string;
  url: string;
  /** Environment id (default: the executor's); `null` = local. */
  environmentId?: string | null;
  startupTimeoutSec?: number;
  toolTimeoutSec?: number;
}

/** What goes into the CODEX_HOME. */
export interface CodexHomeOptions {
  /** The scripted model's base URL (`http://127.0.0.1:PORT/v1`). */
  modelBaseUrl: string;
  /** The executor's WebSocket URL (usually the ws_logger's). */
  executorUrl: string;
  /** `auth_bearer_token` for the executor, if any. */
  executorToken?: string;
  /** `sandbox_mode` (default `danger-full-access`). */
  sandbox?: "read-only" | "workspace-write" | "danger-full-access";
  /** `approval_policy` (default `never`). */
  approvalPolicy?: "never" | "on-request" | "untrusted";
  /** Stdio MCP servers. */
  stdioServers?: StdioMcpServer[];
  /** Streamable HTTP MCP servers. */
  httpServers?: HttpMcpServer[];
  /** `include_local` in environments.toml (default false: everything on the executor). */
  includeLocal?: boolean;
  /** Extra `[features]` flags. */
  features?: Record<string, boolean>;
  /** Extra top-level config lines (raw TOML). */
  extraToml?: string;
  /**
   * Write a model catalog (`model_catalog_json`) that describes the scripted
   * model (default true): without it Codex uses fallback metadata, which
   * offers no `apply_patch` tool.
   */
  modelCatalog?: boolean;
}

/** A written CODEX_HOME. */
export interface CodexHome {
  /** The directory. */
  path: string;
  /** config.toml's text. */
  configToml: string;
  /** environments.toml's text. */
  environmentsToml: string;
  /** Deletes the directory. */
  remove(): Promise<void>;
}

/** A TOML basic string (JSON string syntax is valid TOML for what we write). */
export function tomlString(value: string): string {
  return JSON.stringify(value);
}

function tomlStringArray(values: string[]): string {
  return `[${values.map(tomlString).join(", ")}]`;
}

function tomlInlineTable(entries: Record<string, string>): string {
  const parts = Object.entries(entries).map(([k, v]) => `${tomlString(k)} = ${tomlString(v)}`);
  return `{ ${parts.join(", ")} }`;
}

/** Features the harness turns off: they would run login shells or reach the network. */
export const DEFAULT_FEATURES: Record<string, boolean> = {
  // A shell snapshot runs a login shell (on this machine: `pyenv init`, see README).
  shell_snapshot: false,
  // Request compression: the scripted model reads plain JSON.
  enable_request_compression: false,
  // MCP servers placed on a named environment.
  multi_environment_mcp: true,
  // Plugins and apps sync from the network at start-up (there is none here).
  plugins: false,
  remote_plugin: false,
  apps: false,
};

/** The scripted model's slug. */
export const MODEL_SLUG = "interop-model";

/**
 * The model catalog entry of the scripted model: unified exec
 * (`exec_command`/`write_stdin`), the freeform `apply_patch` tool, image
 * input (`view_image`), no web search, no websockets. The fields are those
 * of the catalog bundled in Codex 0.171 (all required there).
 */
export function modelCatalog(): Record<string, unknown> {
  return {
    models: [{
      slug: MODEL_SLUG,
      display_name: "interop",
      description: "the scripted model of the execbridge interop harness",
      prefer_websockets: false,
      support_verbosity: false,
      default_verbosity: null,
      apply_patch_tool_type: "freeform",
      web_search_tool_type: "text",
      input_modalities: ["text", "image"],
      supports_image_detail_original: false,
      truncation_policy: { mode: "tokens", limit: 10000 },
      supports_parallel_tool_calls: false,
      tool_mode: null,
      multi_agent_version: null,
      multi_agent_reasoning_effort: null,
      use_responses_lite: false,
      supports_reasoning_effort_updates: false,
      include_skills_usage_instructions: true,
      include_apps_usage_instructions: false,
      include_plugin_usage_instructions: false,
      guardian: null,
      node_repl_auto_review_required: false,
      node_repl_disabled: false,
      requires_sandboxed_review: false,
      auto_review_model_override: null,
      model_specialty: null,
      context_window: 272000,
      max_context_window: 272000,
      auto_compact_token_limit: null,
      comp_hash: "interop",
      default_reasoning_summary: "none",
      default_reasoning_level: null,
      supported_reasoning_levels: [],
      shell_type: "unified_exec",
      visibility: "list",
      minimal_client_version: "0.1.0",
      supported_in_api: true,
      availability_nux: null,
      upgrade: null,
      priority: 1,
      model_messages: null,
      experimental_supported_tools: [],
      available_in_plans: [],
      supports_search_tool: false,
      supports_experimental_context: false,
      default_service_tier: null,
      service_tiers: [],
      additional_speed_tiers: [],
      supports_reasoning_summary_parameter: false,
      supports_reasoning_summaries: false,
      base_instructions: "You are the scripted model of a test harness.",
    }],
  };
}

/** Writes config.toml (`catalogPath`: where the model catalog is, if any). */
export function configToml(options: CodexHomeOptions, catalogPath: string | null = null): string {
  const lines: string[] = [
    `model = ${tomlString(MODEL_SLUG)}`,
    `model_provider = "scripted"`,
    `approval_policy = ${tomlString(options.approvalPolicy ?? "never")}`,
    `sandbox_mode = ${tomlString(options.sandbox ?? "danger-full-access")}`,
    // Commands run in non-login shells (see README: the pyenv lock trap).
    `allow_login_shell = false`,
    `check_for_update_on_startup = false`,
    `suppress_unstable_features_warning = true`,
  ];
  if (catalogPath !== null) lines.push(`model_catalog_json = ${tomlString(catalogPath)}`);
  if (options.extraToml) lines.push(options.extraToml.trim());
  lines.push(
    "",
    "[model_providers.scripted]",
    `name = "scripted interop model"`,
    `base_url = ${tomlString(options.modelBaseUrl)}`,
    `wire_api = "responses"`,
    `env_key = ${tomlString(MODEL_KEY_ENV)}`,
    `request_max_retries = 0`,
    `stream_max_retries = 0`,
    "",
    "[features]",
  );
  for (const [name, on] of Object.entries({ ...DEFAULT_FEATURES, ...options.features })) {
    lines.push(`${name} = ${on}`);
  }
  lines.push("", "[shell_environment_policy]", `inherit = "all"`);
  for (const server of options.stdioServers ?? []) {
    lines.push("", `[mcp_servers.${server.name}]`);
    lines.push(`command = ${tomlString(server.command)}`);
    lines.push(`args = ${tomlStringArray(server.args ?? [])}`);
    if (server.cwd !== undefined) lines.push(`cwd = ${tomlString(server.cwd)}`);
    // The run marker lets the harness find the server's process if it outlives its executor.
    lines.push(`env = ${tomlInlineTable({ ...server.env, [MARKER]: RUN_ID })}`);
    if (server.envVars !== undefined) {
      const items = server.envVars.map((v) =>
        typeof v === "string"
          ? tomlString(v)
          : `{ name = ${tomlString(v.name)}, source = ${tomlString(v.source)} }`
      );
      lines.push(`env_vars = [${items.join(", ")}]`);
    }
    const environmentId = server.environmentId === undefined
      ? ENVIRONMENT_ID
      : server.environmentId;
    if (environmentId !== null) lines.push(`environment_id = ${tomlString(environmentId)}`);
    lines.push(`startup_timeout_sec = ${server.startupTimeoutSec ?? 60}`);
    lines.push(`tool_timeout_sec = ${server.toolTimeoutSec ?? 60}`);
  }
  for (const server of options.httpServers ?? []) {
    lines.push("", `[mcp_servers.${server.name}]`);
    lines.push(`url = ${tomlString(server.url)}`);
    const environmentId = server.environmentId === undefined
      ? ENVIRONMENT_ID
      : server.environmentId;
    if (environmentId !== null) lines.push(`environment_id = ${tomlString(environmentId)}`);
    lines.push(`startup_timeout_sec = ${server.startupTimeoutSec ?? 60}`);
    lines.push(`tool_timeout_sec = ${server.toolTimeoutSec ?? 60}`);
  }
  return lines.join("\n") + "\n";
}

/** Writes environments.toml: the executor as the default environment. */
export function environmentsToml(options: CodexHomeOptions): string {
  const lines = [
    `default = ${tomlString(ENVIRONMENT_ID)}`,
    `include_local = ${options.includeLocal ?? false}`,
    "",
    "[[environments]]",
    `id = ${tomlString(ENVIRONMENT_ID)}`,
    `url = ${tomlString(options.executorUrl)}`,
  ];
  if (options.executorToken !== undefined) {
    lines.push(`auth_bearer_token = ${tomlString(options.executorToken)}`);
  }
  lines.push(`connect_timeout_sec = 10`, `initialize_timeout_sec = 10`);
  return lines.join("\n") + "\n";
}

/** Creates a fresh CODEX_HOME with both files. */
export async function writeCodexHome(options: CodexHomeOptions): Promise<CodexHome> {
  const dir = await tempDir("home", HOMES_ROOT);
  let catalogPath: string | null = null;
  if (options.modelCatalog ?? true) {
    catalogPath = `${dir.path}/model-catalog.json`;
    await Deno.writeTextFile(catalogPath, JSON.stringify(modelCatalog(), null, 2) + "\n");
  }
  const config = configToml(options, catalogPath);
  const environments = environmentsToml(options);
  await Deno.writeTextFile(`${dir.path}/config.toml`, config);
  await Deno.writeTextFile(`${dir.path}/environments.toml`, environments);
  return { path: dir.path, configToml: config, environmentsToml: environments, remove: dir.remove };
}
