/**
 * `deno task bench --peers`: execbridge side by side with what users would
 * pick instead, run after the normal benchmark.
 *
 * - `supergateway` (npm `supergateway`, pinned): `--stdio` around
 *   server-everything, `--outputTransport ws`; MCP rows only.
 * - `codex-ws` / `codex-stdio`: OpenAI's Codex exec-server (npm
 *   `@openai/codex`, pinned) with `--listen ws://127.0.0.1:0` and
 *   `--listen stdio`; the process rows (the same scenario code as the normal
 *   run, through an adapter, see peers_codex.ts) and MCP echo through
 *   execbridge's `ExecutorStdioServerLauncher` on top of it.
 *
 * The `direct`, `local`, `remote` and `generic` columns are the normal run's
 * results.
 * The peers are installed on demand into `tests/bench/.peers/`; when that
 * fails, they are skipped with a message. A peer failure never changes the
 * exit code: the cell reads `error` and the message is listed below the
 * table. Everything runs on loopback, and every process a peer started is
 * killed, also on failure, timeout or Ctrl-C.
 *
 * @module
 */

import { formatValue, isBackend, type MetricSpec, valueKey } from "./report.ts";
import { type BenchSettings, type Scenario, scenarios } from "./scenarios.ts";
import type { MetricValues } from "./scenario.ts";
import { RunContext, withDeadline } from "./targets.ts";
import { ensurePeers, type Installed, PEER_VERSIONS, PEERS_DIR } from "./peers_process.ts";
import {
  type CodexServer,
  codexTarget,
  type CodexTransport,
  probeExecbridgeClient,
  startCodexServer,
} from "./peers_codex.ts";
import { GenericClient } from "./generic_client.ts";
import { startSupergateway, WebSocketClientTransport } from "./peers_supergateway.ts";
import { measureMcpEcho } from "./mcp_scenarios.ts";

/** The peers, in table order. */
export const PEERS = ["supergateway", "codex-ws", "codex-stdio"] as const;
/** A peer column. */
export type PeerName = typeof PEERS[number];
/** The columns of the peer table: the normal run's backends, then the peers. */
export const PEER_COLUMNS = ["direct", "local", "remote", "generic", ...PEERS] as const;
/** A column of the peer table. */
export type PeerColumn = typeof PEER_COLUMNS[number];

/** The metrics compared, in table order (ids of the normal run's metrics). */
export const PEER_METRICS = [
  "mcp_p50",
  "mcp_p99",
  "mcp_1mb_p50",
  "true_p50",
  "true_p99",
  "stdout_mbps",
  "echo_p50",
  "echo_p99",
  "concurrent_s",
  "idle_rss",
] as const;

const MCP_METRICS = new Set(["mcp_p50", "mcp_p99", "mcp_1mb_p50"]);

/** One cell of the peer table. */
export interface PeerRow {
  /** The column (backend or peer). */
  column: PeerColumn;
  /** The metric id. */
  metric: string;
  /** The metric's label. */
  label: string;
  /** Unit of the value. */
  unit: string;
  /** The value; null when it failed or was skipped. */
  value: number | null;
  /** `value / direct value`, when both exist and the metric has a direct baseline. */
  ratioVsDirect: number | null;
  /** `main` for the normal run's columns, `peers` for the peers. */
  source: "main" | "peers";
}

/** A peer measurement that failed, or a peer that was skipped. */
export interface PeerError {
  /** The peer. */
  peer: PeerName;
  /** The scenario (or `install`). */
  scenario: string;
  /** What went wrong. */
  message: string;
}

/** The peer comparison, as written into `--json`. */
export interface PeerReport {
  /** The pinned packages and where they are installed. */
  packages: Record<string, { version: string; installed: boolean; path?: string; error?: string }>;
  /** Column order. */
  columns: readonly PeerColumn[];
  /** One row per (column, metric) that applies. */
  results: PeerRow[];
  /** Failed or skipped peer measurements. */
  errors: PeerError[];
  /** Interop findings and how each peer was run. */
  notes: string[];
}

/** Metric specs of the compared metrics, from the normal run's scenarios. */
function peerScenarios(settings: BenchSettings): { metrics: MetricSpec[]; list: Scenario[] } {
  const wanted = new Set<string>(PEER_METRICS);
  const list = scenarios(settings).filter((s) => s.metrics.some((m) => wanted.has(m.id)));
  const specs = new Map(list.flatMap((s) => s.metrics).map((m) => [m.id, m]));
  const metrics = PEER_METRICS.map((id) => specs.get(id)).filter((m) => m !== undefined);
  return { metrics, list };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A stoppable peer comparison run. */
export class PeerRun {
  readonly #settings: BenchSettings;
  readonly #active = new Set<RunContext>();
  readonly #servers = new Set<{ stop(): Promise<void> }>();
  #stopped = false;

  /** A run with the normal run's settings (counts, sizes, time limit). */
  constructor(settings: BenchSettings) {
    this.#settings = settings;
  }

  /**
   * Installs the peers if needed, measures them, and builds the report
   * (with the normal run's `values` for direct, local and remote).
   */
  async run(
    values: ReadonlyMap<string, number | null>,
    failed: ReadonlySet<string>,
  ): Promise<{ report: PeerReport; table: string }> {
    const { metrics, list } = peerScenarios(this.#settings);
    const peerValues = new Map<string, number | null>();
    const errors: PeerError[] = [];
    const notes: string[] = [];
    console.error(`peers: checking ${PEERS_DIR}`);
    const installed = await ensurePeers();
    const packages: PeerReport["packages"] = {};
    const entries = [
      ["supergateway", installed.supergateway, PEER_VERSIONS.supergateway],
      ["@openai/codex", installed.codex, PEER_VERSIONS.codex],
    ] as const;
    for (const [name, entry, version] of entries) {
      packages[name] = entry.ok
        ? { version: entry.version, installed: true, path: entry.path }
        : { version, installed: false, error: entry.error };
    }

    const record = (peer: PeerName, result: MetricValues) => {
      for (const [id, value] of Object.entries(result)) peerValues.set(peerKey(peer, id), value);
    };
    const fail = (peer: PeerName, scenario: Scenario | string, message: string) => {
      const name = typeof scenario === "string" ? scenario : scenario.name;
      errors.push({ peer, scenario: name, message });
      const ids = typeof scenario === "string"
        ? metrics.map((m) => m.id)
        : scenario.metrics.map((m) => m.id);
      for (const id of ids) {
        if (peer === "supergateway" && !MCP_METRICS.has(id)) continue;
        if (!peerValues.has(peerKey(peer, id))) peerValues.set(peerKey(peer, id), null);
      }
      console.error(`${peer} ${name}: ${name === "install" ? "SKIPPED" : "FAILED"}: ${message}`);
    };

    // supergateway: MCP echo only.
    const mcpScenario = list.find((s) => s.metrics.some((m) => m.id === "mcp_p50"))!;
    if (!installed.supergateway.ok) {
      fail("supergateway", "install", installed.supergateway.error);
    } else if (!this.#stopped) {
      notes.push(
        `supergateway ${installed.supergateway.version}: node ${installed.supergateway.path} ` +
          `--stdio "node server-everything stdio" --outputTransport ws --logLevel none; ` +
          `MCP SDK Client over a WebSocket transport on connectWebSocket (TCP_NODELAY)`,
      );
      const entry = installed.supergateway.path;
      await this.#measure("supergateway", mcpScenario, record, fail, async (ctx) => {
        const gateway = await startSupergateway(entry);
        this.#servers.add(gateway);
        try {
          return await measureMcpEcho(
            new WebSocketClientTransport(gateway.url),
            this.#settings,
            ctx,
          );
        } finally {
          await gateway.stop();
          this.#servers.delete(gateway);
        }
      });
    }

    // Codex exec-server over WebSocket and stdio: every scenario.
    for (const transport of ["ws", "stdio"] as const) {
      const peer: PeerName = transport === "ws" ? "codex-ws" : "codex-stdio";
      if (!installed.codex.ok) {
        fail(peer, "install", installed.codex.error);
        continue;
      }
      await this.#runCodex(peer, transport, installed.codex, list, record, fail, notes);
    }

    for (const peer of ["codex-ws", "codex-stdio"] as const) {
      const echo = peerValues.get(peerKey(peer, "echo_p50"));
      if (typeof echo === "number" && echo > 30) {
        notes.push(
          `${peer}: a request answered by a response plus a notification (cat echo, start→closed, ` +
            `MCP) waits ~40 ms: the server does not set TCP_NODELAY on accepted connections ` +
            `(strace of 0.169.0: only SO_REUSEADDR, on the listener), so its second small frame waits ` +
            `for the client's delayed ACK (Nagle); the client side has TCP_NODELAY`,
        );
      }
    }
    const rows = buildPeerRows(metrics, values, failed, peerValues);
    const report: PeerReport = { packages, columns: PEER_COLUMNS, results: rows, errors, notes };
    return { report, table: renderPeerTable(metrics, report, values, failed, peerValues) };
  }

  /** Kills every peer process and measurement (Ctrl-C). */
  async stop(): Promise<void> {
    this.#stopped = true;
    const reason = new Error("interrupted");
    await Promise.all([...this.#active].map((ctx) => ctx.killAll(reason)));
    await Promise.all([...this.#servers].map((server) => server.stop().catch(() => {})));
  }

  async #runCodex(
    peer: PeerName,
    transport: CodexTransport,
    codex: Extract<Installed, { ok: true }>,
    list: Scenario[],
    record: (peer: PeerName, result: MetricValues) => void,
    fail: (peer: PeerName, scenario: Scenario | string, message: string) => void,
    notes: string[],
  ): Promise<void> {
    let server: CodexServer | null = null;
    let connection: GenericClient | null = null;
    // Closes the current server, or only `which` if given (a late failure of
    // a timed-out run must not close the server of the next one).
    const close = async (which?: CodexServer | null) => {
      if (which !== undefined && which !== server) return;
      const s = server, c = connection;
      server = connection = null;
      await c?.close().catch(() => {});
      if (s !== null) {
        await s.stop();
        this.#servers.delete(s);
      }
    };
    const open = async () => {
      if (connection !== null) return connection;
      server = await startCodexServer(codex.path, transport);
      this.#servers.add(server);
      try {
        connection = await GenericClient.open(await server.channel());
      } catch (error) {
        const s = server;
        await close();
        throw new Error(
          `${messageOf(error)}${
            s.process.exited ? `; the server exited: ${s.process.stderrTail()}` : ""
          }`,
        );
      }
      return connection;
    };
    notes.push(
      `${peer}: codex ${codex.version} (${codex.path.slice(PEERS_DIR.length)}) exec-server ` +
        `--listen ${
          transport === "ws" ? "ws://127.0.0.1:0" : "stdio"
        }, default --concurrent-requests 1; ` +
        (transport === "ws"
          ? "client on connectWebSocket (TCP_NODELAY)"
          : "client on lineChannel over the child's pipes"),
    );
    try {
      if (transport === "ws" && !this.#stopped) {
        try {
          await open();
          const notesOf = await withDeadline(
            probeExecbridgeClient(server!.url!),
            30_000,
            "probing with connectExecutor",
          );
          for (const note of notesOf) notes.push(`codex-ws interop: ${note}`);
          await close(); // a fresh server for the measurements
        } catch (error) {
          notes.push(`codex-ws interop probe failed: ${messageOf(error)}`);
          await close();
        }
      }
      for (const scenario of list) {
        if (this.#stopped) break;
        await this.#measure(peer, scenario, record, fail, async (ctx) => {
          const c = await open();
          const s = server!;
          try {
            return await scenario.exec(codexTarget(s, c), ctx);
          } catch (error) {
            // A failed run may leave the server in any state: start afresh.
            await close(s);
            const exited = s.process.exited ? `; the server exited: ${s.process.stderrTail()}` : "";
            throw new Error(`${messageOf(error)}${exited}`);
          }
        }, () => close());
      }
    } finally {
      await close();
    }
  }

  /** Runs one scenario on one peer under the time limit; records values or the failure. */
  async #measure(
    peer: PeerName,
    scenario: Scenario,
    record: (peer: PeerName, result: MetricValues) => void,
    fail: (peer: PeerName, scenario: Scenario | string, message: string) => void,
    run: (ctx: RunContext) => Promise<MetricValues>,
    onTimeout?: () => Promise<void>,
  ): Promise<void> {
    if (this.#stopped) return;
    const ctx = new RunContext();
    this.#active.add(ctx);
    const t0 = performance.now();
    console.error(`${peer} ${scenario.name} …`);
    try {
      const result = await withDeadline(
        run(ctx),
        this.#settings.timeoutMs,
        `${scenario.name} on ${peer}`,
      );
      record(peer, result);
      console.error(
        `${peer} ${scenario.name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } catch (error) {
      await ctx.killAll(error instanceof Error ? error : new Error(String(error)));
      await onTimeout?.();
      if (!this.#stopped) fail(peer, scenario, messageOf(error));
    } finally {
      this.#active.delete(ctx);
    }
  }
}

function peerKey(peer: PeerName, id: string): string {
  return `${peer}:${id}`;
}

/** The value of a cell: from the normal run for its backends, else from the peers. */
function cellValue(
  column: PeerColumn,
  id: string,
  values: ReadonlyMap<string, number | null>,
  peerValues: ReadonlyMap<string, number | null>,
): { present: boolean; value: number | null } {
  const main = isBackend(column);
  const map = main ? values : peerValues;
  const key = main ? valueKey(column, id) : peerKey(column as PeerName, id);
  return { present: map.has(key), value: map.get(key) ?? null };
}

function applies(column: PeerColumn, metric: MetricSpec): boolean {
  if (column === "direct") return metric.direct;
  if (column === "supergateway") return MCP_METRICS.has(metric.id);
  return true;
}

/** The rows of the peer table. */
export function buildPeerRows(
  metrics: readonly MetricSpec[],
  values: ReadonlyMap<string, number | null>,
  _failed: ReadonlySet<string>,
  peerValues: ReadonlyMap<string, number | null>,
): PeerRow[] {
  const rows: PeerRow[] = [];
  for (const metric of metrics) {
    const direct = values.get(valueKey("direct", metric.id)) ?? null;
    for (const column of PEER_COLUMNS) {
      if (!applies(column, metric)) continue;
      const { present, value } = cellValue(column, metric.id, values, peerValues);
      if (!present) continue;
      rows.push({
        column,
        metric: metric.id,
        label: metric.label,
        unit: metric.unit,
        value,
        ratioVsDirect: column !== "direct" && metric.direct && value !== null &&
            direct !== null && direct > 0
          ? value / direct
          : null,
        source: isBackend(column) ? "main" : "peers",
      });
    }
  }
  return rows;
}

/**
 * The peer table: a line per metric, a column per backend and peer, each
 * cell `value (ratio vs direct)`. `-` does not apply, `n/a` was not measured
 * (e.g. `--only`), `error` failed, `skipped` could not be installed.
 */
export function renderPeerTable(
  metrics: readonly MetricSpec[],
  report: PeerReport,
  values: ReadonlyMap<string, number | null>,
  failed: ReadonlySet<string>,
  peerValues: ReadonlyMap<string, number | null>,
): string {
  const skipped = new Set(
    report.errors.filter((e) => e.scenario === "install").map((e) => e.peer as string),
  );
  const header = ["metric", ...PEER_COLUMNS];
  const lines: string[][] = [header];
  for (const metric of metrics) {
    const line = [`${metric.label} (${metric.unit})`];
    for (const column of PEER_COLUMNS) {
      if (!applies(column, metric)) {
        line.push("-");
        continue;
      }
      const row = report.results.find((r) => r.column === column && r.metric === metric.id);
      if (row === undefined || row.value === null) {
        const { present } = cellValue(column, metric.id, values, peerValues);
        const isMain = isBackend(column);
        line.push(
          skipped.has(column)
            ? "skipped"
            : isMain
            ? (failed.has(valueKey(column, metric.id)) ? "error" : "n/a")
            : present
            ? "error"
            : "n/a",
        );
        continue;
      }
      const ratio = row.ratioVsDirect === null ? "" : ` (${row.ratioVsDirect.toFixed(2)}x)`;
      line.push(`${formatValue(row.value)}${ratio}`);
    }
    lines.push(line);
  }
  const widths = header.map((_, i) =>
    Math.max(...lines.map((line) => line[i].length)) + (i === 0 ? 0 : 2)
  );
  const table = lines.map((line) =>
    line.map((text, i) => i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i])).join(" ")
      .trimEnd()
  ).join("\n");
  const describe = (name: string, label: string) => {
    const entry = report.packages[name];
    return `${label} ${entry.version}${entry.installed ? "" : " (not installed)"}`;
  };
  const out = [
    `peers (from npm, in ${PEERS_DIR}): ${describe("supergateway", "supergateway")}, ` +
    `${describe("@openai/codex", "Codex exec-server")}`,
    "",
    table,
    "",
    "(x) = value/direct: for ms and s lower is better, for MB/s higher is better. " +
    "direct/local/remote/generic come from the run above; MCP direct = server-everything as a local " +
    "stdio child. RSS: the exec-server process, per live `sleep 60`.",
  ];
  if (report.errors.length > 0) {
    out.push("", `${report.errors.length} peer measurement(s) FAILED or skipped:`);
    for (const e of report.errors) out.push(`  ${e.peer} / ${e.scenario}: ${e.message}`);
  }
  if (report.notes.length > 0) {
    out.push("", "notes:");
    for (const note of report.notes) out.push(`  ${note}`);
  }
  return out.join("\n");
}
