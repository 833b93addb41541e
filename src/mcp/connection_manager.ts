/**
 * {@link McpConnectionManager}: starts every enabled server of a config with
 * its placement (local child or executor process), tracks per-server status,
 * exposes their tools as `server__tool`, and routes tool calls with the
 * configured timeouts and concurrency. A stdio server that exits
 * unexpectedly is started again behind the same client session
 * ({@link ServerSupervisor}), unless its config says `respawn = false`.
 *
 * Long (~630 lines) on purpose: each server's state (placement, start,
 * status, restarts, tools, its environment's connection) is read by every
 * part: starting, listing, routing calls and status; the launchers,
 * transports and the supervisor are apart.
 *
 * @module
 */

// The MCP SDK is imported where a server starts, not with this module: `serve` loads the
// library's entry point (mod.ts), and an executor must not pay for the SDK (docs/performance.md).
import type { Client } from "@modelcontextprotocol/sdk/client";
// @ts-types="@modelcontextprotocol/sdk/client/streamableHttp"
import type { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
// @ts-types="@modelcontextprotocol/sdk/types"
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import type { ExecutorClient } from "../client/executor_client.ts";
import { ExecutorLink } from "../client/executor_link.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import {
  type McpConfig,
  type McpEnvironmentConfig,
  type McpServerConfig,
  resolveExecutor,
  validatePlacement,
} from "./config.ts";
import { withTimeout } from "../util/deadline.ts";
import { inSpan, TRACING } from "../util/telemetry.ts";
import { ExecutorStdioServerLauncher } from "./executor_stdio.ts";
import { LocalStdioServerLauncher } from "./local_stdio.ts";
import { ServerSupervisor } from "./server_supervisor.ts";
import type { McpCallToolResult, McpServerTool, McpToolInputSchema } from "./types.ts";

/** Servers started at once on one executor (more wait their turn). */
export const STARTS_PER_EXECUTOR = 8;

/** Separator between server and tool in qualified tool names. */
export const TOOL_NAME_SEPARATOR = "__";

/**
 * Where a server is in its lifecycle: `restarting` after it exited
 * unexpectedly, until a new process took over (calls wait meanwhile).
 */
export type McpServerState = "disabled" | "starting" | "ready" | "restarting" | "failed";

/** What `mcp status` shows for one named environment (an executor servers are placed on). */
export interface McpEnvironmentStatus {
  /** The environment's id. */
  id: string;
  /** `websocket` for a URL, `program` for an executor started over stdio (e.g. ssh). */
  transport: "websocket" | "program";
  /** `connected`, `reconnecting` (a network loss being resumed), or `down`. */
  state: "connected" | "reconnecting" | "down";
  /** Why it is down (or why the round trip failed). */
  error?: string;
  /** The executor's version (`environment/info`). */
  executorVersion?: string;
  /** One round trip to the executor, in ms, measured when asked. */
  latencyMs?: number;
  /** The servers placed there, in config order. */
  servers: string[];
}

/** A named environment and its connection. */
interface ManagedEnvironment {
  config: McpEnvironmentConfig;
  /** Null when it could not be reached at start. */
  link: ExecutorLink | null;
  /** Why it could not be reached at start. */
  error: string | null;
}

/** What `mcp status` shows for one server. */
export interface McpServerStatus {
  /** Server name from the config. */
  name: string;
  /** `local` or `remote`. */
  environment: "local" | "remote";
  /** The named environment it runs on (`environment_id`), if any. */
  environmentId?: string;
  /** `stdio` or `http`. */
  transport: "stdio" | "http";
  /** Lifecycle state. */
  state: McpServerState;
  /** Why it failed. */
  error?: string;
  /** Number of tools it exposes (after filters), once ready. */
  tools?: number;
  /** Startup time in ms, once ready or failed. */
  startupMs?: number;
  /** What the server said about itself in `initialize`. */
  serverInfo?: { name: string; version: string };
  /** Whether a failure of this server fails startup. */
  required: boolean;
  /** How many times a new process was started after it exited unexpectedly. */
  restarts: number;
  /** How it last ended unexpectedly: `exited (code 3)`, `exited (signal SIGKILL)`, … */
  lastExit?: string;
}

/** A tool of a managed server. */
export interface McpTool {
  /** Qualified name: `server__tool`. */
  name: string;
  /** The server. */
  server: string;
  /** The tool's own name on its server. */
  tool: string;
  /** The tool's description. */
  description?: string;
  /** The tool's input JSON schema. */
  inputSchema: McpToolInputSchema;
}

/** Options of {@link McpConnectionManager.start}. */
export interface McpConnectionManagerOptions {
  /**
   * The executor for remote servers: a connected client (not closed by the
   * manager), or where to connect. Default: `EXECBRIDGE_EXECUTOR_URL`, then
   * the config's `executor` section.
   */
  executor?:
    | ExecutorClient
    | { url: string; token?: string; tokenFile?: string; caFile?: string }
    | null;
  /** Working directory for servers without `cwd` (default: this process's for local ones, the executor's for remote ones). */
  cwd?: string;
  /** Logs (stderr by default). */
  log?: Logger;
  /** Called whenever a server's status changes (progress display). */
  onStatus?: (status: McpServerStatus) => void;
  /** Name the MCP client reports to servers. */
  clientInfo?: { name: string; version: string };
  /** Grace periods when closing servers (default 2000 ms). */
  graceMs?: number;
}

/** Thrown by {@link McpConnectionManager.start} when a `required` server failed. */
export class RequiredServerError extends Error {
  /** The statuses of the failed required servers. */
  readonly failed: McpServerStatus[];
  /** Creates the error. */
  constructor(failed: McpServerStatus[]) {
    super(
      `required MCP server${failed.length > 1 ? "s" : ""} failed to start: ${
        failed.map((s) => `${s.name} (${s.error})`).join("; ")
      }`,
    );
    this.name = "RequiredServerError";
    this.failed = failed;
  }
}

interface Managed {
  config: McpServerConfig;
  status: McpServerStatus;
  client: Client | null;
  transport: Transport | null;
  tools: McpServerTool[];
  queue: Promise<unknown>;
}

function isExecutorClient(value: unknown): value is ExecutorClient {
  return typeof value === "object" && value !== null && "start" in value && "sessionId" in value;
}

/**
 * Runs the MCP servers of a config.
 *
 * @example
 * ```ts
 * import { loadMcpConfig, McpConnectionManager } from "@execbridge/execbridge";
 *
 * const config = await loadMcpConfig("mcp.json");
 * const manager = await McpConnectionManager.start(config, { executor: { url: "ws://box:8765" } });
 * console.log(manager.listTools().map((t) => t.name)); // ["fs__read_file", …]
 * const result = await manager.callTool("fs__read_file", { path: "/etc/hostname" });
 * await manager.close();
 * ```
 */
export class McpConnectionManager implements AsyncDisposable {
  readonly #servers: Managed[];
  readonly #options: McpConnectionManagerOptions;
  readonly #log: Logger;
  /** A connected client the caller gave (not closed here, not renewed). */
  #givenExecutor: ExecutorClient | null = null;
  /** The executor connection the manager opened: renewed when lost for good. */
  #link: ExecutorLink | null = null;
  /** Named environments (`environment_id`), by id: one connection each, shared by its servers. */
  readonly #environments = new Map<string, ManagedEnvironment>();
  /** Starts running and waiting, per executor (`""`: the default one). */
  readonly #starts = new Map<string, { running: number; waiting: (() => void)[] }>();
  #closing: Promise<void> | null = null;

  private constructor(config: McpConfig, options: McpConnectionManagerOptions) {
    this.#options = options;
    this.#log = options.log ?? createLogger({ name: "mcp" });
    this.#servers = config.servers.map((server) => ({
      config: server,
      status: {
        name: server.name,
        environment: server.environment,
        ...(server.environmentId !== undefined ? { environmentId: server.environmentId } : {}),
        transport: server.transport,
        state: server.enabled ? "starting" : "disabled",
        required: server.required,
        restarts: 0,
      },
      client: null,
      transport: null,
      tools: [],
      queue: Promise.resolve(),
    }));
  }

  /**
   * Starts every enabled server concurrently. Resolves when all are ready or
   * failed; rejects (after closing everything) when a `required` one failed,
   * or when the config places a server where it cannot run.
   */
  static async start(
    config: McpConfig,
    options: McpConnectionManagerOptions = {},
  ): Promise<McpConnectionManager> {
    const manager = new McpConnectionManager(config, options);
    try {
      await manager.#connectExecutor(config);
      await manager.#connectEnvironments(config);
      await Promise.all(manager.#servers.map((m) => manager.#startServer(m)));
    } catch (error) {
      await manager.close();
      throw error;
    }
    const failed = manager.#servers.filter((m) => m.config.required && m.status.state === "failed");
    if (failed.length > 0) {
      await manager.close();
      throw new RequiredServerError(failed.map((m) => ({ ...m.status })));
    }
    return manager;
  }

  /** Every server's status, in config order. */
  status(): McpServerStatus[] {
    return this.#servers.map((m) => ({ ...m.status }));
  }

  /**
   * Every named environment the enabled servers use: its connection state
   * (with the error when down), the executor's version, a round trip to it
   * (measured now), and the servers placed there.
   */
  async environments(): Promise<McpEnvironmentStatus[]> {
    return await Promise.all([...this.#environments.values()].map(async (e) => {
      const client = e.link?.current ?? null;
      const status: McpEnvironmentStatus = {
        id: e.config.id,
        transport: e.config.program !== undefined ? "program" : "websocket",
        state: client === null ? "down" : client.state === "closed" ? "down" : client.state,
        servers: this.#servers.filter((m) => m.config.environmentId === e.config.id)
          .map((m) => m.config.name),
      };
      const error = e.error ?? (client?.state === "closed" ? client.disconnected : null);
      if (error) status.error = error;
      if (client !== null && client.state === "connected") {
        status.executorVersion = client.environmentInfo?.executorVersion;
        try {
          status.latencyMs = await client.ping();
        } catch (failure) {
          status.error = (failure as Error).message;
        }
      }
      return status;
    }));
  }

  /**
   * Tools of the ready servers (and of those restarting, as they were) as
   * `server__tool`, after each server's `enabled_tools` then
   * `disabled_tools`. Throws when two names collide.
   */
  listTools(): McpTool[] {
    const tools: McpTool[] = [];
    const seen = new Map<string, McpTool>();
    for (const m of this.#servers) {
      if (m.status.state !== "ready" && m.status.state !== "restarting") continue;
      for (const tool of m.tools) {
        const qualified: McpTool = {
          name: `${m.config.name}${TOOL_NAME_SEPARATOR}${tool.name}`,
          server: m.config.name,
          tool: tool.name,
          description: tool.description,
          inputSchema: tool.inputSchema,
        };
        const other = seen.get(qualified.name);
        if (other !== undefined) {
          throw new Error(
            `tool name collision: ${qualified.name} is both ${other.server}'s ${other.tool} ` +
              `and ${qualified.server}'s ${qualified.tool}; rename one of the servers`,
          );
        }
        seen.set(qualified.name, qualified);
        tools.push(qualified);
      }
    }
    return tools;
  }

  /**
   * Calls a tool by its qualified name with the server's `tool_timeout_sec`.
   * Calls to one server run one at a time unless it
   * `supports_parallel_tool_calls`. A call in flight when its server exits
   * unexpectedly rejects with an error naming the exit (it is not retried);
   * one made while the server restarts waits for the new process.
   */
  callTool(
    name: string,
    args: Record<string, unknown> = {},
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<McpCallToolResult> {
    const tool = this.listTools().find((t) => t.name === name);
    if (tool === undefined) {
      return Promise.reject(
        new Error(`unknown tool ${name}: \`mcp tools\` lists the available ones`),
      );
    }
    const m = this.#find(tool.server)!;
    const client = m.client!;
    const call = () =>
      client.callTool({ name: tool.tool, arguments: args }, undefined, {
        timeout: options.timeoutMs ?? m.config.toolTimeoutMs,
        signal: options.signal,
      }) as Promise<McpCallToolResult>;
    // A client span per tool call when tracing (Deno's OpenTelemetry); names only, never arguments.
    const run = TRACING
      ? () =>
        inSpan(`tools/call ${tool.name}`, {
          kind: "client",
          attributes: { "mcp.server": tool.server, "mcp.tool": tool.tool },
        }, call)
      : call;
    if (m.config.supportsParallelToolCalls) return run();
    const result = m.queue.then(run, run);
    m.queue = result.catch(() => {});
    return result;
  }

  /** Closes every server (and the executor connection the manager opened). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#servers.map(async (m) => {
        const client = m.client;
        const transport = m.transport;
        m.client = null;
        m.transport = null;
        // Client.close() skips the transport once it saw it close: close both.
        await client?.close().catch(() => {});
        await transport?.close().catch(() => {});
      }));
      await this.#link?.close();
      await Promise.all([...this.#environments.values()].map((e) => e.link?.close()));
    })();
    return this.#closing;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Waits for a start slot on an executor; resolves with the function that frees it. */
  async #startSlot(executor: string): Promise<() => void> {
    let gate = this.#starts.get(executor);
    if (gate === undefined) this.#starts.set(executor, gate = { running: 0, waiting: [] });
    const slots = gate;
    if (slots.running >= STARTS_PER_EXECUTOR) {
      await new Promise<void>((resolve) => slots.waiting.push(resolve));
    } else {
      slots.running++;
    }
    return () => {
      const next = slots.waiting.shift();
      if (next !== undefined) next();
      else slots.running--;
    };
  }

  #find(server: string): Managed | undefined {
    return this.#servers.find((m) => m.config.name === server);
  }

  async #connectExecutor(config: McpConfig): Promise<void> {
    const given = this.#options.executor;
    if (isExecutorClient(given)) {
      this.#givenExecutor = given;
      validatePlacement(config, { url: "connected" });
      return;
    }
    const target: { url: string; token?: string; tokenFile?: string; caFile?: string } | null =
      given ?? resolveExecutor(config, {});
    validatePlacement(config, target);
    const needed = config.servers.some((s) => s.enabled && s.environment === "remote");
    if (!needed || target === null) return;
    const windowMs = config.executor?.resumeWindowMs;
    this.#link = await ExecutorLink.open(target.url, {
      token: target.token,
      tokenFile: target.tokenFile,
      caFile: target.caFile,
      ...(windowMs === undefined ? {} : { reconnect: { windowMs } }),
      clientName: "execbridge-mcp",
      log: this.#log,
    });
  }

  /**
   * Connects to every named environment an enabled server uses, at once.
   * One that cannot be reached fails only its own servers.
   */
  async #connectEnvironments(config: McpConfig): Promise<void> {
    const used = new Set(
      config.servers.filter((s) => s.enabled && s.environmentId !== undefined)
        .map((s) => s.environmentId!),
    );
    await Promise.all(
      config.environments.filter((e) => used.has(e.id)).map(async (e) => {
        const managed: ManagedEnvironment = { config: e, link: null, error: null };
        this.#environments.set(e.id, managed);
        const target = e.program !== undefined
          ? { program: e.program, args: e.args, env: e.env, cwd: e.cwd }
          : e.url!;
        try {
          managed.link = await ExecutorLink.open(target, {
            token: e.token,
            tokenFile: e.tokenFile,
            caFile: e.tlsCa,
            connectTimeoutMs: e.connectTimeoutMs,
            initializeTimeoutMs: e.initializeTimeoutMs,
            ...(e.resumeWindowMs === undefined
              ? {}
              : { reconnect: { windowMs: e.resumeWindowMs } }),
            clientName: "execbridge-mcp",
            log: this.#log,
          });
        } catch (error) {
          managed.error = (error as Error).message;
          this.#log.warn(`environment ${e.id} cannot be reached: ${managed.error}`);
        }
      }),
    );
  }

  /**
   * The executor connection for a remote server: its named environment's,
   * the given one, or the manager's own; renewed (a fresh session) when it
   * was lost for good.
   */
  #executor(config?: McpServerConfig): Promise<ExecutorClient> {
    const id = config?.environmentId;
    if (id !== undefined) {
      const environment = this.#environments.get(id);
      if (environment?.link == null) {
        return Promise.reject(
          new Error(
            `environment ${id} cannot be reached: ${environment?.error ?? "not connected"}`,
          ),
        );
      }
      return environment.link.renew();
    }
    if (this.#givenExecutor !== null) return Promise.resolve(this.#givenExecutor);
    return this.#link!.renew();
  }

  #setStatus(m: Managed, change: Partial<McpServerStatus>): void {
    Object.assign(m.status, change);
    this.#options.onStatus?.({ ...m.status });
  }

  async #startServer(m: Managed): Promise<void> {
    if (!m.config.enabled) return;
    this.#setStatus(m, { state: "starting" });
    // A few starts at a time per executor: a thousand at once starve it (and the agent) of CPU
    // until its pings go unanswered. The startup timeout counts from the server's own turn.
    const executor = m.config.environment === "remote" ? m.config.environmentId ?? "" : null;
    const release = executor === null ? () => {} : await this.#startSlot(executor);
    const began = performance.now();
    try {
      const { Client } = await import("@modelcontextprotocol/sdk/client");
      const timeout = m.config.startupTimeoutMs;
      const launching = this.#launch(m.config);
      const transport = await withTimeout(launching, timeout, {
        error: () =>
          new Error(`starting MCP server ${m.config.name} timed out after ${timeout} ms`),
      }).catch((error) => {
        // A launch that finishes after the timeout must not leave its server running.
        launching.then((late) => late.close(), () => {});
        throw error;
      });
      m.transport = transport;
      const client = new Client(
        this.#options.clientInfo ?? { name: "execbridge", version: "0.1.0" },
      );
      m.client = client;
      await client.connect(transport, { timeout });
      m.tools = filterTools(await listAllTools(client, timeout), m.config);
      this.#setStatus(m, {
        state: "ready",
        tools: m.tools.length,
        startupMs: Math.round(performance.now() - began),
        serverInfo: client.getServerVersion(),
      });
      transport.onclose = chain(transport.onclose, () => {
        const state = m.status.state;
        if ((state === "ready" || state === "restarting") && this.#closing === null) {
          // A supervised server says why it ended (gave up restarting, or its executor is gone).
          const end = transport instanceof ServerSupervisor ? transport.end : null;
          const error = end !== null && end.kind !== "closed" ? end.message : "the server exited";
          this.#log.warn(`MCP server ${m.config.name} closed: ${error}`);
          this.#setStatus(m, { state: "failed", error });
        }
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const hint = /timed out/i.test(message)
        ? `${message}; raise startup_timeout_sec for ${m.config.name} if it needs longer`
        : message;
      this.#setStatus(m, {
        state: "failed",
        error: hint,
        startupMs: Math.round(performance.now() - began),
      });
      this.#log.info(`MCP server ${m.config.name} failed to start: ${hint}`);
      const { client, transport } = m;
      m.client = null;
      m.transport = null;
      await client?.close().catch(() => {});
      await transport?.close().catch(() => {});
    } finally {
      release();
    }
  }

  #launch(config: McpServerConfig): Promise<Transport> {
    if (config.transport === "http") {
      // A remote one is reached from the executor's network: its requests are `http/request`s.
      const fetch: typeof globalThis.fetch | undefined = config.environment === "remote"
        ? async (input, init) => (await this.#executor(config)).fetch(input, init)
        : undefined;
      return importStreamableHttp().then(({ StreamableHTTPClientTransport }) =>
        new StreamableHTTPClientTransport(new URL(config.url!), {
          requestInit: { headers: config.headers },
          fetch,
        })
      );
    }
    const command = {
      name: config.name,
      command: config.command!,
      args: config.args,
      env: config.env,
      envVars: config.envVars,
      cwd: config.cwd ?? this.#options.cwd,
    };
    const log = this.#log;
    const graceMs = this.#options.graceMs;
    const remote = config.environment === "remote";
    const local = new LocalStdioServerLauncher({ log, graceMs });
    // A remote server starts on a live session: a new one if the executor was lost meanwhile.
    const launch = async () =>
      remote
        ? new ExecutorStdioServerLauncher(await this.#executor(config), { log, graceMs })
          .launch(command)
        : local.launch(command);
    if (!config.respawn) return launch();
    const m = this.#find(config.name)!;
    return ServerSupervisor.launch(launch, {
      name: config.name,
      log,
      policy: { maxRestarts: config.maxRestarts },
      startupTimeoutMs: config.startupTimeoutMs,
      // The manager's own executor connection comes back as a new session within its window.
      ...(remote && (this.#link !== null || config.environmentId !== undefined)
        ? { whenLost: async () => void await this.#executor(config) }
        : {}),
      onServerExit: (event) => {
        if (this.#closing !== null) return;
        const final = event.restart === null && event.renewing !== true;
        this.#setStatus(m, {
          state: final ? "failed" : "restarting",
          restarts: event.restarts,
          lastExit: event.reason,
          ...(final ? { error: event.message } : {}),
        });
      },
      onServerRestarted: (event) => {
        if (this.#closing !== null) return;
        if (event.tools !== null) m.tools = filterTools(event.tools, config);
        this.#setStatus(m, { state: "ready", tools: m.tools.length, restarts: event.restarts });
      },
    });
  }
}

/** The SDK's Streamable HTTP client transport, imported on first use. */
function importStreamableHttp(): Promise<
  { StreamableHTTPClientTransport: typeof StreamableHTTPClientTransport }
> {
  return import("@modelcontextprotocol/sdk/client/streamableHttp.js");
}

function chain(first: (() => void) | undefined, second: () => void): () => void {
  return () => {
    first?.();
    second();
  };
}

async function listAllTools(client: Client, timeout: number): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}

function filterTools(tools: McpServerTool[], config: McpServerConfig): McpServerTool[] {
  let result = tools;
  if (config.enabledTools !== undefined) {
    const allowed = new Set(config.enabledTools);
    result = result.filter((t) => allowed.has(t.name));
  }
  if (config.disabledTools !== undefined) {
    const denied = new Set(config.disabledTools);
    result = result.filter((t) => !denied.has(t.name));
  }
  return result;
}
