/**
 * `mcp`: for people. Lists the servers of a config, starts them to show
 * their status and tools, and calls a tool — as tables, or JSON with
 * `--json`.
 *
 * @module
 */

import type { McpEnvironmentStatus } from "../mcp/connection_manager.ts";
import { createLogger, parseLogLevel } from "../log/logger.ts";
import { loadMcpConfig, type McpConfig, resolveExecutor } from "../mcp/config.ts";
import {
  McpConnectionManager,
  type McpServerStatus,
  type McpTool,
} from "../mcp/connection_manager.ts";
import { parseArgs } from "./args.ts";

/** Usage text of `mcp`. */
export const MCP_USAGE = `usage: execbridge mcp COMMAND --config FILE [options]

  list                      the configured servers and where they run
  status                    start every enabled server and show its status (restarts,
                            last exit), and each named environment (state, version, latency)
  tools [SERVER]            start the servers and list their tools (server__tool)
  call SERVER TOOL [JSON]   call a tool with JSON arguments (default {})

  --config FILE             .json (mcpServers) or .toml ([mcp_servers.NAME]); named
                            executors from its environments, or environments.toml beside it
  --executor URL            default executor for remote servers (else EXECBRIDGE_EXECUTOR_URL,
                            else the config's executor.url)
  --token-file FILE         executor token (else EXECBRIDGE_TOKEN, else the default token file)
  --tls-ca FILE             trust this PEM CA for a wss:// executor (else EXECBRIDGE_TLS_CA)
  --json                    one JSON document on stdout instead of a table
  --log-level LEVEL         error | warn | info | debug (default warn)

status and tools exit 1 when an enabled server failed to start.
`;

/** Runs `mcp`; resolves with the exit code. */
export async function mcpCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: ["config", "executor", "token-file", "tls-ca", "log-level"],
    boolean: ["json", "help"],
  });
  const [sub, ...positional] = parsed.positional;
  if (parsed.flags.has("help") || sub === undefined) {
    console.log(MCP_USAGE);
    return sub === undefined && !parsed.flags.has("help") ? 2 : 0;
  }
  const log = createLogger({
    name: "mcp",
    level: parseLogLevel(parsed.strings.get("log-level"), "warn"),
  });
  const configPath = parsed.strings.get("config");
  if (configPath === undefined) throw new Error(`--config FILE is required\n\n${MCP_USAGE}`);
  const config = await loadMcpConfig(configPath);
  const json = parsed.flags.has("json");
  const executor = resolveExecutor(config, {
    executor: parsed.strings.get("executor"),
    tokenFile: parsed.strings.get("token-file"),
  });

  switch (sub) {
    case "list":
      return list(config, json);
    case "status":
    case "tools":
    case "call": {
      const only = sub === "status" ? undefined : positional[0];
      if (sub === "call" && positional.length < 2) {
        throw new Error(`mcp call needs SERVER and TOOL\n\n${MCP_USAGE}`);
      }
      let callArgs: Record<string, unknown> = {};
      if (sub === "call" && positional[2] !== undefined) {
        try {
          callArgs = JSON.parse(positional[2]);
        } catch (error) {
          throw new Error(`the tool arguments are not JSON: ${(error as Error).message}`);
        }
      }
      const selected = only === undefined ? config : selectServer(config, only);
      const progress = new Progress(selected.servers.filter((s) => s.enabled).length);
      const manager = await McpConnectionManager.start(selected, {
        executor: executor && { ...executor, caFile: parsed.strings.get("tls-ca") },
        log,
        onStatus: (status) => progress.update(status),
      });
      progress.done();
      try {
        if (sub === "status") return status(manager.status(), await manager.environments(), json);
        if (sub === "tools") return tools(manager.status(), manager.listTools(), json);
        return await call(manager, positional[0], positional[1], callArgs, json);
      } finally {
        await manager.close();
      }
    }
    default:
      throw new Error(`unknown mcp command ${JSON.stringify(sub)}\n\n${MCP_USAGE}`);
  }
}

function selectServer(config: McpConfig, name: string): McpConfig {
  const server = config.servers.find((s) => s.name === name);
  if (server === undefined) {
    const names = config.servers.map((s) => s.name).join(", ") || "none";
    throw new Error(`no MCP server named ${name} in ${config.source} (servers: ${names})`);
  }
  return { ...config, servers: [{ ...server, enabled: true }] };
}

function list(config: McpConfig, json: boolean): number {
  const rows = config.servers.map((s) => ({
    name: s.name,
    environment: s.environment,
    transport: s.transport,
    enabled: s.enabled,
    required: s.required,
    command: s.transport === "stdio" ? [s.command!, ...s.args].join(" ") : s.url!,
    cwd: s.cwd ?? null,
  }));
  if (json) {
    print(JSON.stringify({ config: config.source, servers: rows }, null, 2));
    return 0;
  }
  print(table(
    ["SERVER", "WHERE", "ENABLED", "COMMAND"],
    rows.map((r) => [
      r.name,
      r.environment,
      r.enabled ? (r.required ? "required" : "yes") : "no",
      r.command,
    ]),
  ));
  return 0;
}

function failedExit(statuses: McpServerStatus[]): number {
  const failed = statuses.filter((s) => s.state === "failed");
  for (const s of failed) console.error(`execbridge mcp: ${s.name} failed to start: ${s.error}`);
  return failed.length > 0 ? 1 : 0;
}

function status(
  statuses: McpServerStatus[],
  environments: McpEnvironmentStatus[],
  json: boolean,
): number {
  if (json) {
    print(JSON.stringify({ servers: statuses, environments }, null, 2));
  } else {
    print(table(
      ["SERVER", "WHERE", "STATUS", "TOOLS", "STARTUP", "RESTARTS", "LAST EXIT", "DETAIL"],
      statuses.map((s) => [
        s.name,
        s.environmentId ?? s.environment,
        s.state,
        s.tools === undefined ? "" : String(s.tools),
        s.startupMs === undefined ? "" : `${s.startupMs} ms`,
        String(s.restarts),
        s.lastExit ?? "",
        s.state === "failed"
          ? s.error ?? ""
          : s.serverInfo
          ? `${s.serverInfo.name} ${s.serverInfo.version}`
          : "",
      ]),
    ));
    if (environments.length > 0) {
      print("");
      print(table(
        ["ENVIRONMENT", "TRANSPORT", "STATE", "VERSION", "LATENCY", "SERVERS", "DETAIL"],
        environments.map((e) => [
          e.id,
          e.transport,
          e.state,
          e.executorVersion ?? "",
          e.latencyMs === undefined ? "" : `${e.latencyMs.toFixed(1)} ms`,
          e.servers.join(","),
          e.error ?? "",
        ]),
      ));
    }
  }
  return failedExit(statuses);
}

function tools(statuses: McpServerStatus[], list: McpTool[], json: boolean): number {
  if (json) {
    print(JSON.stringify({ servers: statuses, tools: list }, null, 2));
  } else {
    print(table(
      ["TOOL", "DESCRIPTION"],
      list.map((t) => [t.name, (t.description ?? "").split("\n")[0].slice(0, 100)]),
    ));
  }
  return failedExit(statuses);
}

async function call(
  manager: McpConnectionManager,
  server: string,
  tool: string,
  args: Record<string, unknown>,
  json: boolean,
): Promise<number> {
  const [state] = manager.status();
  if (state.state !== "ready") {
    console.error(`execbridge mcp: ${server} failed to start: ${state.error}`);
    return 1;
  }
  const result = await manager.callTool(`${server}__${tool}`, args);
  if (json) {
    print(JSON.stringify(result, null, 2));
  } else {
    for (const item of result.content as { type: string; text?: string; mimeType?: string }[]) {
      if (item.type === "text") print(item.text ?? "");
      else print(`[${item.type}${item.mimeType ? ` ${item.mimeType}` : ""}]`);
    }
  }
  return result.isError ? 1 : 0;
}

/** A progress line on stderr while servers start. */
class Progress {
  readonly #total: number;
  readonly #tty = Deno.stderr.isTerminal();
  #states = new Map<string, string>();

  constructor(total: number) {
    this.#total = total;
  }

  update(status: McpServerStatus): void {
    this.#states.set(status.name, status.state);
    const ready = [...this.#states.values()].filter((s) => s === "ready").length;
    const failed = [...this.#states.values()].filter((s) => s === "failed").length;
    const line = `starting MCP servers: ${ready}/${this.#total} ready` +
      (failed > 0 ? `, ${failed} failed` : "");
    if (this.#tty) {
      Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
    } else if (status.state !== "starting") {
      console.error(`execbridge mcp: ${status.name} ${status.state}`);
    }
  }

  done(): void {
    if (this.#tty && this.#states.size > 0) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const format = (row: string[]) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  ").trimEnd();
  return [format(header), ...rows.map(format)].join("\n");
}

function print(text: string): void {
  console.log(text);
}
