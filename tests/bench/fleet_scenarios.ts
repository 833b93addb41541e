/**
 * A fleet: one agent (this process) drives many executors, each running
 * many MCP servers (a tiny POSIX sh server, tests/fixtures/tiny_mcp_server.sh,
 * so that a thousand of them fit in memory). It starts every server through
 * the SDK `Client` over execbridge's executor transport, lists every
 * server's tools, calls each once, and reports the wall time of each phase,
 * the agent's RSS, the RSS per executor (the `serve` process) and per
 * server, and checks through each executor's `/metrics` that the agent
 * holds one WebSocket per executor. Remote only.
 */

import { Client } from "@modelcontextprotocol/sdk/client";
import {
  connectExecutor,
  type ExecutorClient,
  ExecutorStdioServerLauncher,
  McpConnectionManager,
  parseMcpConfig,
} from "../../mod.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { TEST_TOKEN } from "../support/executor_process.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import {
  type BenchExecutor,
  readVmRss,
  type RunContext,
  startBenchExecutor,
  stopExecutor,
} from "./targets.ts";

/** Sizes of the fleet scenario. */
export interface FleetSettings {
  /** Executors started. */
  fleetExecutors: number;
  /** MCP servers per executor. */
  fleetServersPerExecutor: number;
}

const TINY_SERVER = new URL("../fixtures/tiny_mcp_server.sh", import.meta.url).pathname;
const MIB = 1024 * 1024;

/** The fleet scenarios: through the launcher API, and as a config of named environments. */
export function fleetScenarios(settings: FleetSettings): Scenario[] {
  return [fleet(settings), fleetByEnvironments(settings)];
}

/** Sum of VmRSS of the direct children of `pid` (the servers an executor started). */
async function childrenRss(pid: number): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      bytes += await readVmRss(Number(entry.name));
      count++;
    } catch {
      // Gone meanwhile.
    }
  }
  return { count, bytes };
}

/** `execbridge_connections_live` of an executor. */
async function liveConnections(url: string): Promise<number> {
  const response = await fetch(url.replace(/^ws/, "http") + "/metrics", {
    headers: { Authorization: `Bearer ${TEST_TOKEN}` },
  });
  const text = await response.text();
  const match = text.match(/^execbridge_connections_live (\d+)$/m);
  if (match === null) throw new Error("no execbridge_connections_live in /metrics");
  return Number(match[1]);
}

function fleet(settings: FleetSettings): Scenario {
  const { fleetExecutors: executors, fleetServersPerExecutor: perExecutor } = settings;
  const label = `${executors}×${perExecutor}`;
  return {
    name: `fleet ${label} MCP servers`,
    only: ["remote"],
    metrics: [
      { id: "fleet_start_s", label: `fleet ${label}: start all`, unit: "s", direct: false },
      { id: "fleet_list_s", label: `fleet ${label}: list all tools`, unit: "s", direct: false },
      { id: "fleet_call_s", label: `fleet ${label}: one call each`, unit: "s", direct: false },
      { id: "fleet_agent_rss", label: `fleet ${label}: agent RSS`, unit: "MiB", direct: false },
      {
        id: "fleet_executor_rss",
        label: `fleet ${label}: RSS per executor`,
        unit: "MiB",
        direct: false,
      },
      {
        id: "fleet_server_rss",
        label: `fleet ${label}: RSS per server`,
        unit: "MiB",
        direct: false,
      },
    ],
    async exec(_target, ctx: RunContext): Promise<MetricValues> {
      const started: BenchExecutor[] = [];
      const connections: ExecutorClient[] = [];
      const clients: Client[] = [];
      try {
        await Promise.all(
          Array.from({ length: executors }, async () => {
            const executor = await startBenchExecutor();
            started.push(executor);
            connections.push(await connectExecutor(executor.url));
          }),
        );
        ctx.checkAborted();
        const t0 = performance.now();
        await Promise.all(connections.map(async (connection) => {
          const launcher = new ExecutorStdioServerLauncher(connection, { log: silentLogger });
          for (let i = 0; i < perExecutor; i++) {
            ctx.checkAborted();
            const client = new Client({ name: "fleet", version: "1.0.0" });
            await client.connect(await launcher.launch({ command: "sh", args: [TINY_SERVER] }));
            clients.push(client);
          }
        }));
        const t1 = performance.now();
        const tools = await Promise.all(clients.map((client) => client.listTools()));
        if (tools.some((t) => t.tools.length !== 1)) throw new Error("a server listed other tools");
        const t2 = performance.now();
        const answers = await Promise.all(
          clients.map((client) => client.callTool({ name: "ping", arguments: {} })),
        );
        const pong = answers.filter((a) => (a.content as { text?: string }[])[0]?.text === "pong");
        if (pong.length !== clients.length) throw new Error("not every server answered pong");
        const t3 = performance.now();

        // One WebSocket per executor: each executor sees exactly one client connection.
        const live = await Promise.all(started.map((e) => liveConnections(e.url)));
        if (live.some((n) => n !== 1)) throw new Error(`connections per executor: ${live}`);
        let executorRss = 0;
        let serverRss = 0;
        let servers = 0;
        for (const executor of started) {
          executorRss += await readVmRss(executor.pid);
          const children = await childrenRss(executor.pid);
          serverRss += children.bytes;
          servers += children.count;
        }
        if (servers !== executors * perExecutor) {
          throw new Error(`${servers} server processes, expected ${executors * perExecutor}`);
        }
        return {
          fleet_start_s: (t1 - t0) / 1000,
          fleet_list_s: (t2 - t1) / 1000,
          fleet_call_s: (t3 - t2) / 1000,
          fleet_agent_rss: Deno.memoryUsage().rss / MIB,
          fleet_executor_rss: executorRss / executors / MIB,
          fleet_server_rss: serverRss / servers / MIB,
        };
      } finally {
        await Promise.all(clients.map((client) => client.close().catch(() => {})));
        await Promise.all(connections.map((connection) => connection.close().catch(() => {})));
        await Promise.all(started.map((executor) => stopExecutor(executor)));
      }
    },
  };
}

/**
 * The same fleet as an agent configures it: one `McpConnectionManager`, a
 * config with one named environment per executor (`environments`) and
 * every server placed by `environment_id`. Start covers each server's
 * launch, `initialize` and first `tools/list`; then one call each.
 */
function fleetByEnvironments(settings: FleetSettings): Scenario {
  const { fleetExecutors: executors, fleetServersPerExecutor: perExecutor } = settings;
  const label = `${executors}×${perExecutor} environments`;
  return {
    name: `fleet ${label}`,
    only: ["remote"],
    metrics: [
      { id: "envs_start_s", label: `fleet ${label}: start all`, unit: "s", direct: false },
      { id: "envs_call_s", label: `fleet ${label}: one call each`, unit: "s", direct: false },
      { id: "envs_agent_rss", label: `fleet ${label}: agent RSS`, unit: "MiB", direct: false },
    ],
    async exec(_target, ctx: RunContext): Promise<MetricValues> {
      const started: BenchExecutor[] = await Promise.all(
        Array.from({ length: executors }, () => startBenchExecutor()),
      );
      let manager: McpConnectionManager | null = null;
      try {
        ctx.checkAborted();
        const servers: Record<string, unknown> = {};
        started.forEach((_, e) => {
          for (let i = 0; i < perExecutor; i++) {
            servers[`s${e}_${i}`] = {
              command: "sh",
              args: [TINY_SERVER],
              environment_id: `e${e}`,
              // All start at once: on 2 CPUs the last ones wait a minute for their workers.
              startup_timeout_sec: 600,
            };
          }
        });
        const config = parseMcpConfig(
          JSON.stringify({
            environments: started.map((executor, e) => ({ id: `e${e}`, url: executor.url })),
            mcpServers: servers,
          }),
          { format: "json", source: "fleet.json" },
        );
        const t0 = performance.now();
        manager = await McpConnectionManager.start(config, { log: silentLogger });
        const t1 = performance.now();
        const tools = manager.listTools();
        if (tools.length !== executors * perExecutor) {
          const failed = manager.status().filter((status) => status.state === "failed");
          throw new Error(
            `${tools.length} tools, expected ${executors * perExecutor}; ${failed.length} ` +
              `servers failed, the first: ${failed[0]?.error}`,
          );
        }
        const answers = await Promise.all(tools.map((tool) => manager!.callTool(tool.name)));
        const pong = answers.filter((a) => (a.content as { text?: string }[])[0]?.text === "pong");
        if (pong.length !== tools.length) throw new Error("not every server answered pong");
        const t2 = performance.now();
        // One connection per environment, shared by its servers.
        const live = await Promise.all(started.map((e) => liveConnections(e.url)));
        if (live.some((n) => n !== 1)) throw new Error(`connections per executor: ${live}`);
        return {
          envs_start_s: (t1 - t0) / 1000,
          envs_call_s: (t2 - t1) / 1000,
          envs_agent_rss: Deno.memoryUsage().rss / MIB,
        };
      } finally {
        await manager?.close();
        await Promise.all(started.map((executor) => stopExecutor(executor)));
      }
    },
  };
}
