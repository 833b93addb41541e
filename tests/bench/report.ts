/**
 * Statistics and output of the benchmark suite: percentiles, the fixed-width
 * table printed to stdout, and the JSON report written by `--json FILE`.
 *
 * @module
 */

/**
 * A measured backend. `direct` is plain `Deno.Command`, the physical
 * baseline; `remote` an executor through execbridge's own client; `generic`
 * the same executor through a client that speaks the plain protocol (JSON
 * text, base64, no extension: what Codex speaks; generic_client.ts).
 */
export type BackendName = "direct" | "local" | "remote" | "generic";

/** Every backend, in table order. */
export const BACKENDS: readonly BackendName[] = ["direct", "local", "remote", "generic"];

/** Whether `name` is a backend of the normal run (as opposed to a peer). */
export function isBackend(name: string): name is BackendName {
  return (BACKENDS as readonly string[]).includes(name);
}

/** One reported number, e.g. the p50 of the `true` latency. */
export interface MetricSpec {
  /** Stable identifier (JSON key), e.g. `true_p50`. */
  id: string;
  /** Human-readable name, without the unit. */
  label: string;
  /** Unit of the value: `ms`, `s`, `MB/s`, `MiB`. */
  unit: string;
  /** Whether `direct` measures it (and ratios vs direct make sense). */
  direct: boolean;
}

/** One row of the results: a metric of a backend. */
export interface ResultRow {
  /** The backend. */
  backend: BackendName;
  /** The metric id. */
  metric: string;
  /** The metric's label. */
  label: string;
  /** The value, or null when it failed. */
  value: number | null;
  /** Unit of the value. */
  unit: string;
  /** `value / direct value`, when both exist. */
  ratioVsDirect: number | null;
}

/** A scenario that failed (or timed out) on a backend. */
export interface BenchError {
  /** The backend. */
  backend: BackendName;
  /** The scenario's name. */
  scenario: string;
  /** What went wrong. */
  message: string;
}

/** Everything written by `--json FILE`. */
export interface BenchReport {
  /** Where and when it ran. */
  environment: Record<string, string | number>;
  /** The sizes and counts used (full or `--quick`). */
  settings: Record<string, number | string | boolean>;
  /** One row per measured (backend, metric). */
  results: ResultRow[];
  /** Failures; the run exits with status 1 when there is any. */
  errors: BenchError[];
  /** Cleanup problems that did not invalidate a measurement. */
  warnings: string[];
}

/** The nearest-rank percentile (`p` in 0..1) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The median (p50, nearest rank) of `values`. */
export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

/** Builds the rows for the metrics and values measured per backend, adding ratios vs direct. */
export function buildRows(
  metrics: readonly MetricSpec[],
  backends: readonly BackendName[],
  values: ReadonlyMap<string, number | null>,
): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const metric of metrics) {
    const direct = values.get(valueKey("direct", metric.id)) ?? null;
    for (const backend of backends) {
      if (backend === "direct" && !metric.direct) continue;
      const key = valueKey(backend, metric.id);
      if (!values.has(key)) continue;
      const value = values.get(key) ?? null;
      const ratio = backend !== "direct" && metric.direct && value !== null && direct !== null &&
          direct > 0
        ? value / direct
        : null;
      rows.push({
        backend,
        metric: metric.id,
        label: metric.label,
        value,
        unit: metric.unit,
        ratioVsDirect: ratio,
      });
    }
  }
  return rows;
}

/** The key of a backend's value of a metric in the map given to {@link buildRows}. */
export function valueKey(backend: BackendName, metricId: string): string {
  return `${backend}:${metricId}`;
}

/** Formats a value with about three significant digits. */
export function formatValue(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/**
 * Renders the results as a fixed-width table: one line per metric, a column
 * per backend that ran, then the ratios vs `direct` and, when both ran,
 * `generic/remote` (the plain protocol against execbridge's own client).
 * A failed cell reads `error`; one that does not apply reads `-`.
 */
export function renderTable(
  metrics: readonly MetricSpec[],
  backends: readonly BackendName[],
  rows: readonly ResultRow[],
  failed: ReadonlySet<string>,
): string {
  const cell = (backend: BackendName, metric: MetricSpec): string => {
    if (backend === "direct" && !metric.direct) return "-";
    const row = rows.find((r) => r.backend === backend && r.metric === metric.id);
    if (row === undefined || row.value === null) {
      return failed.has(valueKey(backend, metric.id)) ? "error" : "-";
    }
    return formatValue(row.value);
  };
  const ratioColumns = backends.includes("direct") ? backends.filter((b) => b !== "direct") : [];
  const versusOwn = backends.includes("generic") && backends.includes("remote");
  const header = [
    "metric",
    ...backends,
    ...ratioColumns.map((b) => `${b}/direct`),
    ...(versusOwn ? ["generic/remote"] : []),
  ];
  const lines: string[][] = [header];
  for (const metric of metrics) {
    const line = [`${metric.label} (${metric.unit})`];
    for (const backend of backends) line.push(cell(backend, metric));
    for (const backend of ratioColumns) {
      const ratio = rows.find((r) => r.backend === backend && r.metric === metric.id)
        ?.ratioVsDirect;
      line.push(ratio === undefined || ratio === null ? "-" : `${ratio.toFixed(2)}x`);
    }
    if (versusOwn) {
      const value = (b: BackendName) =>
        rows.find((r) => r.backend === b && r.metric === metric.id)?.value ?? null;
      const generic = value("generic"), own = value("remote");
      line.push(
        generic !== null && own !== null && own > 0 ? `${(generic / own).toFixed(2)}x` : "-",
      );
    }
    lines.push(line);
  }
  const widths = header.map((_, i) =>
    Math.max(...lines.map((line) => line[i].length)) + (i === 0 ? 0 : 2)
  );
  return lines.map((line) =>
    line.map((text, i) => i === 0 ? text.padEnd(widths[i]) : text.padStart(widths[i])).join(" ")
      .trimEnd()
  ).join("\n");
}
