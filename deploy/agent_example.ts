/**
 * An agent driving several executors: the pods of `deploy/kubernetes/statefulset.yaml`,
 * `execbridge-0.execbridge.NAMESPACE.svc.cluster.local`, `execbridge-1…`, one task per
 * executor. It runs a command on each and starts the MCP servers of one config on each (one
 * {@link McpConnectionManager} per executor: a config names one executor today).
 *
 * In the cluster, from a pod labelled `app.kubernetes.io/name: execbridge-agent` (the
 * NetworkPolicy admits only those) with the token Secret mounted:
 *
 * ```sh
 * deno run -A --config deno.json deploy/agent_example.ts
 * ```
 *
 * Settings come from the environment: `EXECBRIDGE_NAMESPACE` (default `default`),
 * `EXECBRIDGE_REPLICAS` (3), `EXECBRIDGE_TOKEN_FILE` (`/var/run/secrets/execbridge/token`),
 * `EXECBRIDGE_CLUSTER_DOMAIN` (`cluster.local`). docs/deploy.md walks through it;
 * tests/deploy_test.ts runs these functions against two local executors.
 *
 * @module
 */

import {
  connectExecutor,
  type ExecutorClient,
  type McpConfig,
  McpConnectionManager,
  parseMcpConfig,
} from "../mod.ts";

/** Where the executors of a StatefulSet are reached. */
export interface ExecutorSet {
  /** The StatefulSet's name (`execbridge`): pods are `NAME-0`, `NAME-1`, … */
  statefulSet?: string;
  /** The headless Service's name (the StatefulSet's `serviceName`, `execbridge`). */
  service?: string;
  /** The namespace both live in. */
  namespace: string;
  /** How many pods (the StatefulSet's `replicas`). */
  replicas: number;
  /** The cluster's DNS domain (`cluster.local`). */
  clusterDomain?: string;
  /** The executor port (8765). */
  port?: number;
}

/**
 * The WebSocket URL of each pod of `set`, in ordinal order. These host names are the ones the
 * StatefulSet passes to `serve --allow-host`, so the executor's Host check lets them in.
 */
export function executorUrls(set: ExecutorSet): string[] {
  const statefulSet = set.statefulSet ?? "execbridge";
  const service = set.service ?? "execbridge";
  const domain = set.clusterDomain ?? "cluster.local";
  const port = set.port ?? 8765;
  return Array.from(
    { length: set.replicas },
    (_, ordinal) =>
      `ws://${statefulSet}-${ordinal}.${service}.${set.namespace}.svc.${domain}:${port}`,
  );
}

/**
 * Connects to every executor at once. When one cannot be reached, the others are closed
 * again and the error names the URL.
 */
export async function connectAll(
  urls: string[],
  options: { tokenFile?: string; token?: string } = {},
): Promise<ExecutorClient[]> {
  const results = await Promise.allSettled(
    urls.map((url) => connectExecutor(url, { ...options, clientName: "execbridge-agent" })),
  );
  const failed = results.findIndex((result) => result.status === "rejected");
  if (failed === -1) {
    return results.map((result) => (result as PromiseFulfilledResult<ExecutorClient>).value);
  }
  await Promise.all(
    results.map((result) => result.status === "fulfilled" ? result.value.close() : undefined),
  );
  const reason = (results[failed] as PromiseRejectedResult).reason;
  throw new Error(`cannot reach the executor ${urls[failed]}: ${(reason as Error).message}`, {
    cause: reason,
  });
}

/** One unit of work for one executor. */
export interface Task {
  /** Unique within the executor's session while it runs (the process id). */
  id: string;
  /** Program and arguments, run on the executor. */
  argv: string[];
  /** Working directory on the executor (the pod's `/workspace`). */
  cwd: string;
}

/** What a task printed and how it ended. */
export interface TaskResult {
  /** The exit code, or null when a signal ended it. */
  exitCode: number | null;
  /** stdout and stderr, decoded as UTF-8, in the order they arrived. */
  output: string;
}

/**
 * Runs `task` on `executor` with the executor's core environment (PATH, HOME, …) and waits
 * for it to end.
 */
export async function runTask(executor: ExecutorClient, task: Task): Promise<TaskResult> {
  const process = await executor.start({
    processId: task.id,
    argv: task.argv,
    cwd: task.cwd,
    envPolicy: {
      inherit: "core",
      ignoreDefaultExcludes: false,
      exclude: [],
      set: {},
      includeOnly: [],
    },
  });
  const decoder = new TextDecoder();
  let output = "";
  let exitCode: number | null = null;
  for await (const event of process.events()) {
    if (event.type === "output") output += decoder.decode(event.chunk, { stream: true });
    if (event.type === "exited") exitCode = event.exitCode;
    if (event.type === "failed") throw new Error(`task ${task.id} failed: ${event.message}`);
    if (event.type === "closed") break;
  }
  return { exitCode, output: output + decoder.decode() };
}

/**
 * Starts the servers of `config` on every executor: one manager per executor, each given
 * its connected client (which the manager does not close). Servers marked `remote` run on
 * that executor, `local` ones in this process. Closes what started when one fails.
 */
export async function startMcpOnEach(
  executors: ExecutorClient[],
  config: McpConfig,
): Promise<McpConnectionManager[]> {
  const results = await Promise.allSettled(
    executors.map((executor) => McpConnectionManager.start(config, { executor })),
  );
  const failed = results.find((result) => result.status === "rejected");
  if (failed === undefined) {
    return results.map((result) => (result as PromiseFulfilledResult<McpConnectionManager>).value);
  }
  await Promise.all(
    results.map((result) => result.status === "fulfilled" ? result.value.close() : undefined),
  );
  throw (failed as PromiseRejectedResult).reason;
}

/**
 * The MCP config the example runs on each executor: the filesystem server on the pod's
 * workspace. It needs Node.js in the executor image (the stock image has only Deno; see
 * docs/deploy.md for a derived image).
 */
export const EXAMPLE_MCP_CONFIG = `{
  "mcpServers": {
    "workspace": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/workspace"],
      "cwd": "/workspace",
      "environment": "remote"
    }
  }
}`;

async function main(): Promise<void> {
  const urls = executorUrls({
    namespace: Deno.env.get("EXECBRIDGE_NAMESPACE") ?? "default",
    replicas: Number(Deno.env.get("EXECBRIDGE_REPLICAS") ?? "3"),
    clusterDomain: Deno.env.get("EXECBRIDGE_CLUSTER_DOMAIN") ?? "cluster.local",
  });
  const tokenFile = Deno.env.get("EXECBRIDGE_TOKEN_FILE") ?? "/var/run/secrets/execbridge/token";
  const executors = await connectAll(urls, { tokenFile });
  try {
    // One task per executor, all at once.
    const results = await Promise.all(executors.map((executor, ordinal) =>
      runTask(executor, {
        id: `task-${ordinal}`,
        argv: ["sh", "-c", "hostname; nproc; df -h /workspace | tail -n 1"],
        cwd: "/workspace",
      })
    ));
    results.forEach((result, ordinal) =>
      console.log(`${urls[ordinal]} (exit ${result.exitCode}):\n${result.output}`)
    );
    // The same MCP servers on each executor, tools named server__tool per manager.
    const config = parseMcpConfig(EXAMPLE_MCP_CONFIG, { format: "json", source: "example" });
    const managers = await startMcpOnEach(executors, config);
    try {
      for (const [ordinal, manager] of managers.entries()) {
        const result = await manager.callTool("workspace__list_directory", { path: "/workspace" });
        console.log(`${urls[ordinal]}:`, JSON.stringify(result.content));
      }
    } finally {
      await Promise.all(managers.map((manager) => manager.close()));
    }
  } finally {
    await Promise.all(executors.map((executor) => executor.close()));
  }
}

if (import.meta.main) await main();
