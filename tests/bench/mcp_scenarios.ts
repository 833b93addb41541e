/**
 * MCP `echo` through the SDK Client against the real
 * `@modelcontextprotocol/server-everything` (from tests/e2e/node_modules):
 * directly as a local stdio child (the physical limit), through
 * LocalExecBackend, and through the remote executor.
 */

import { Client } from "@modelcontextprotocol/sdk/client";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import { ExecutorStdioServerLauncher, LocalStdioServerLauncher } from "../../mod.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { percentile } from "./report.ts";
import type { MetricValues, Scenario } from "./scenario.ts";
import type { RunContext } from "./targets.ts";

/** The MCP server every MCP row runs, execbridge and peers alike. */
export const SERVER_EVERYTHING = new URL(
  "../e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
  import.meta.url,
).pathname;

/** Sizes of the MCP scenario. */
export interface McpSettings {
  /** Measured small echo calls. */
  mcpEchoes: number;
  /** Measured 1 MB echo calls. */
  mcpBigEchoes: number;
}

const COMMAND = { name: "everything", command: "node", args: [SERVER_EVERYTHING, "stdio"] };

/**
 * MCP `echo` through `transport`: 200 warm-up calls, `mcpEchoes` measured
 * small calls, one warm-up and `mcpBigEchoes` measured 1 MB calls — the same
 * procedure as every MCP row, execbridge and peers alike.
 */
export async function measureMcpEcho(
  transport: Transport,
  settings: McpSettings,
  ctx: RunContext,
): Promise<MetricValues> {
  const client = new Client({ name: "execbridge-bench", version: "1.0.0" });
  const onAbort = () => void client.close().catch(() => {});
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await client.connect(transport);
    const echo = async (message: string) => {
      ctx.checkAborted();
      const result = await client.callTool({ name: "echo", arguments: { message } });
      const text = (result.content as { text?: string }[])[0]?.text ?? "";
      if (!text.endsWith(message)) throw new Error("echo returned something else");
    };
    for (let i = 0; i < 200; i++) await echo("warm-up");
    const small: number[] = [];
    for (let i = 0; i < settings.mcpEchoes; i++) {
      const t0 = performance.now();
      await echo(`hello ${i}`);
      small.push(performance.now() - t0);
    }
    const big = "y".repeat(1_000_000);
    await echo(big);
    const large: number[] = [];
    for (let i = 0; i < settings.mcpBigEchoes; i++) {
      const t0 = performance.now();
      await echo(big);
      large.push(performance.now() - t0);
    }
    return {
      mcp_p50: percentile(small, 0.5),
      mcp_p99: percentile(small, 0.99),
      mcp_1mb_p50: percentile(large, 0.5),
    };
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await client.close().catch(() => {});
    await transport.close().catch(() => {});
  }
}

/** The MCP echo scenario. */
export function mcpEcho(settings: McpSettings): Scenario {
  return {
    name: "MCP echo (server-everything)",
    metrics: [
      { id: "mcp_p50", label: "MCP echo p50", unit: "ms", direct: true },
      { id: "mcp_p99", label: "MCP echo p99", unit: "ms", direct: true },
      { id: "mcp_1mb_p50", label: "MCP 1 MB echo p50", unit: "ms", direct: true },
    ],
    async direct(ctx) {
      const launcher = new LocalStdioServerLauncher({ log: silentLogger });
      return await measureMcpEcho(await launcher.launch(COMMAND), settings, ctx);
    },
    async exec({ backend }, ctx) {
      const launcher = new ExecutorStdioServerLauncher(backend, { log: silentLogger });
      return await measureMcpEcho(await launcher.launch(COMMAND), settings, ctx);
    },
  };
}
