/** What a benchmark scenario is: a measurement run once per backend. */

import type { BackendName, MetricSpec } from "./report.ts";
import type { ExecTarget, RunContext } from "./targets.ts";

/** Values of a scenario's metrics, by metric id. */
export type MetricValues = Record<string, number>;

/** A measurement, run once per backend. */
export interface Scenario {
  /** Short name for progress and error messages. */
  name: string;
  /** The numbers it reports. */
  metrics: MetricSpec[];
  /** The backends it applies to (default: all). */
  only?: readonly BackendName[];
  /** The `Deno.Command` baseline, when there is one. */
  direct?: (ctx: RunContext) => Promise<MetricValues>;
  /** The measurement on an execbridge backend. */
  exec: (target: ExecTarget, ctx: RunContext) => Promise<MetricValues>;
}
