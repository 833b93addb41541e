/**
 * The execbridge benchmark suite (`deno task bench`): process start latency,
 * stdout throughput, stdin→stdout round trips, memory per idle process and
 * many concurrent processes, measured on
 *
 * - `direct`: plain `Deno.Command`, the physical baseline (where it applies);
 * - `local`: a {@link LocalExecBackend} in this process;
 * - `remote`: a real executor subprocess (`deno run -A mod.ts serve` on
 *   127.0.0.1:0) through `connectExecutor`;
 * - `generic`: another such executor through a generic protocol client
 *   (JSON text frames, base64, a `writeId` per write, none of execbridge's
 *   extensions: what Codex speaks; generic_client.ts). The `generic/remote`
 *   column says what a third-party client pays for the plain protocol.
 *
 * It prints a fixed-width table to stdout (progress and errors go to stderr)
 * and exits with status 1 when any measurement failed or timed out. Every
 * process it starts is killed before it exits, also on failure or Ctrl-C.
 *
 * ```sh
 * deno task bench                      # full run
 * deno task bench --quick              # smoke run with small counts
 * deno task bench --json results.json  # also write the results as JSON
 * deno task bench --only local,remote  # a subset of the backends
 * deno task bench --scenario echo       # the scenarios whose name contains "echo"
 * deno task bench --peers              # then supergateway and Codex exec-server (peers.ts)
 * ```
 *
 * @module
 */

import { parseArgs } from "../../src/cli/args.ts";
import { LEAN_WORKERS_V8_FLAG, leanWorkersFlagSet } from "../../src/process/host/v8_flags.ts";
import {
  type BackendName,
  BACKENDS,
  type BenchError,
  type BenchReport,
  buildRows,
  renderTable,
  valueKey,
} from "./report.ts";
import {
  type BenchSettings,
  FULL_SETTINGS,
  QUICK_SETTINGS,
  type Scenario,
  scenarios,
} from "./scenarios.ts";
import { type ExecTarget, openLocal, openRemote, RunContext, withDeadline } from "./targets.ts";
import { type PeerReport, PeerRun } from "./peers.ts";
import { openGeneric } from "./generic_client.ts";

const USAGE =
  `usage: deno task bench [--quick] [--json FILE] [--only direct|local|remote|generic[,…]]
                        [--scenario TEXT[,…]] [--timeout SECONDS] [--peers]

  --quick            small counts for a fast smoke run
  --json FILE        also write the results (and environment) as JSON to FILE
  --only LIST        measure only these backends (comma-separated or repeated)
  --scenario LIST    run only the scenarios whose name contains one of these (case-insensitive)
  --timeout SECONDS  time limit of each scenario on each backend (default 120)
  --peers            then also run supergateway and the Codex exec-server (installed from
                     npm into tests/bench/.peers/ on demand) and print them side by side
`;

/** Parsed command line of the benchmark. */
export interface BenchOptions {
  /** Use {@link QUICK_SETTINGS}. */
  quick: boolean;
  /** Where to write the JSON report, if anywhere. */
  jsonFile: string | null;
  /** The backends to measure, in table order. */
  backends: BackendName[];
  /** Time limit of each scenario on each backend, if not the default. */
  timeoutMs: number | null;
  /** Also compare with the peers (peers.ts). */
  peers: boolean;
  /** Run only the scenarios whose name contains one of these (lower case); empty: all. */
  scenarios: string[];
}

/** Parses the benchmark's arguments; throws a readable error for bad ones. */
export function parseBenchArgs(args: readonly string[]): BenchOptions | "help" {
  const parsed = parseArgs(args, {
    string: ["json", "timeout"],
    multiple: ["only", "scenario"],
    boolean: ["quick", "help", "peers"],
  });
  if (parsed.flags.has("help")) return "help";
  if (parsed.positional.length > 0 || parsed.rest.length > 0) {
    throw new Error(`unexpected argument ${[...parsed.positional, ...parsed.rest][0]}`);
  }
  const only = (parsed.lists.get("only") ?? []).flatMap((v) => v.split(",")).map((v) => v.trim());
  for (const name of only) {
    if (!(BACKENDS as readonly string[]).includes(name)) {
      throw new Error(`--only takes ${BACKENDS.join(", ")}; got ${JSON.stringify(name)}`);
    }
  }
  const timeout = parsed.strings.get("timeout");
  const seconds = Number(timeout);
  if (timeout !== undefined && !(seconds > 0)) {
    throw new Error(`--timeout takes a positive number of seconds; got ${JSON.stringify(timeout)}`);
  }
  return {
    quick: parsed.flags.has("quick"),
    jsonFile: parsed.strings.get("json") ?? null,
    backends: only.length === 0 ? [...BACKENDS] : BACKENDS.filter((b) => only.includes(b)),
    timeoutMs: timeout === undefined ? null : seconds * 1000,
    peers: parsed.flags.has("peers"),
    scenarios: (parsed.lists.get("scenario") ?? []).flatMap((v) => v.split(","))
      .map((v) => v.trim().toLowerCase()).filter((v) => v !== ""),
  };
}

/** Where and when the benchmark runs. */
async function describeEnvironment(): Promise<Record<string, string | number>> {
  let cpuModel = "unknown";
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    cpuModel = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? cpuModel;
  } catch {
    // Not Linux, or not readable.
  }
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    target: Deno.build.target,
    kernel: Deno.osRelease(),
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    v8Flags: leanWorkersFlagSet() ? LEAN_WORKERS_V8_FLAG : "",
    date: new Date().toISOString(),
  };
}

/** The open backends of this run; `close` releases them all and is idempotent. */
class Targets {
  /** Problems met while closing (a backend that did not close in time). */
  readonly warnings: string[] = [];
  readonly #targets = new Map<BackendName, ExecTarget>();
  readonly #failures = new Map<BackendName, string>();
  #closing: Promise<void> | null = null;

  /** Opens the selected backends but `direct`; a backend that fails to open is recorded. */
  async open(backends: readonly BackendName[]): Promise<void> {
    if (backends.includes("local")) this.#targets.set("local", openLocal());
    const remotes = [["remote", openRemote], ["generic", openGeneric]] as const;
    for (const [name, open] of remotes) {
      if (!backends.includes(name)) continue;
      try {
        this.#targets.set(
          name,
          await withDeadline(open(), 30_000, `starting the ${name} executor`),
        );
      } catch (error) {
        this.#failures.set(name, `cannot start the ${name} executor: ${messageOf(error)}`);
      }
    }
  }

  /** The target of an execbridge backend, or the reason it is missing. */
  get(name: Exclude<BackendName, "direct">): ExecTarget | string {
    return this.#targets.get(name) ?? this.#failures.get(name) ?? `${name} was not opened`;
  }

  /** Closes every target (kills their processes, stops the executor). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const [name, target] of this.#targets) {
        try {
          await withDeadline(target.close(), 60_000, `closing the ${name} backend`);
        } catch (error) {
          this.warnings.push(messageOf(error));
          console.error(`warning: ${messageOf(error)}`);
        }
      }
    })();
    return this.#closing;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one scenario on one backend under the time limit. On failure or
 * timeout everything the run started is killed and the error is returned.
 */
async function runScenario(
  scenario: Scenario,
  backend: BackendName,
  targets: Targets,
  settings: BenchSettings,
  active: Set<RunContext>,
): Promise<Record<string, number>> {
  let run: (ctx: RunContext) => Promise<Record<string, number>>;
  if (backend === "direct") {
    run = scenario.direct!;
  } else {
    const target = targets.get(backend);
    if (typeof target === "string") throw new Error(target);
    run = (ctx) => scenario.exec(target, ctx);
  }
  const ctx = new RunContext();
  active.add(ctx);
  try {
    return await withDeadline(
      run(ctx),
      settings.timeoutMs,
      `${scenario.name} on ${backend}`,
    );
  } catch (error) {
    await ctx.killAll(error instanceof Error ? error : new Error(String(error)));
    throw error;
  } finally {
    active.delete(ctx);
  }
}

/** Runs the benchmark; resolves with the exit code. */
async function main(args: readonly string[]): Promise<number> {
  let options: BenchOptions | "help";
  try {
    options = parseBenchArgs(args);
  } catch (error) {
    console.error(`${messageOf(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  const settings: BenchSettings = {
    ...(options.quick ? QUICK_SETTINGS : FULL_SETTINGS),
    ...(options.timeoutMs === null ? {} : { timeoutMs: options.timeoutMs }),
  };
  const backends = options.backends;
  const environment = await describeEnvironment();
  const list = scenarios(settings).filter((scenario) =>
    options.scenarios.length === 0 ||
    options.scenarios.some((text) => scenario.name.toLowerCase().includes(text))
  );
  if (list.length === 0) {
    console.error(`--scenario matched no scenario: ${options.scenarios.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const metrics = list.flatMap((s) => s.metrics);
  const values = new Map<string, number | null>();
  const failed = new Set<string>();
  const errors: BenchError[] = [];

  const targets = new Targets();
  const active = new Set<RunContext>();
  const peerRun = options.peers ? new PeerRun(settings) : null;
  // Ctrl-C or SIGTERM: kill what runs, stop the executor, then exit.
  let interrupted = false;
  const onSignal = (signal: Deno.Signal) => async () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: stopping every process…`);
    const reason = new Error(`interrupted by ${signal}`);
    await Promise.all([...active].map((ctx) => ctx.killAll(reason)));
    await targets.close();
    await peerRun?.stop();
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const handler = onSignal(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });

  const started = performance.now();
  try {
    await targets.open(backends);
    runs: for (const scenario of list) {
      for (const backend of backends) {
        if (interrupted) break runs;
        if (backend === "direct" && scenario.direct === undefined) continue;
        if (scenario.only !== undefined && !scenario.only.includes(backend)) continue;
        const t0 = performance.now();
        console.error(`${backend.padEnd(6)} ${scenario.name} …`);
        try {
          const result = await runScenario(scenario, backend, targets, settings, active);
          for (const [id, value] of Object.entries(result)) {
            values.set(valueKey(backend, id), value);
          }
          console.error(
            `${backend.padEnd(6)} ${scenario.name}: done in ${
              ((performance.now() - t0) / 1000).toFixed(1)
            } s`,
          );
        } catch (error) {
          if (interrupted) break runs;
          const message = messageOf(error);
          errors.push({ backend, scenario: scenario.name, message });
          for (const metric of scenario.metrics) {
            values.set(valueKey(backend, metric.id), null);
            failed.add(valueKey(backend, metric.id));
          }
          console.error(`${backend.padEnd(6)} ${scenario.name}: FAILED: ${message}`);
        }
      }
    }
  } finally {
    await targets.close();
  }

  const rows = buildRows(metrics, backends, values);
  const mode = options.quick ? "quick" : "full";
  console.log(
    `execbridge benchmark (${mode}): deno ${environment.deno}, v8 ${environment.v8}, ` +
      `${environment.target}, kernel ${environment.kernel}`,
  );
  console.log(`cpus: ${environment.cpus} × ${environment.cpuModel}`);
  console.log(`v8 flags (this process and the executor): ${environment.v8Flags || "none"}`);
  console.log(
    `date: ${environment.date}, total ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log("");
  console.log(renderTable(metrics, backends, rows, failed));
  console.log("");
  console.log(
    "ratios are value/direct: for ms and s lower is better, for MB/s higher is better. " +
      "RSS: executor process (remote, generic) or this process (local), per live `sleep 60`. " +
      "generic/remote: the plain protocol vs execbridge's own client.",
  );
  if (errors.length > 0) {
    console.log("");
    console.log(`${errors.length} measurement(s) FAILED:`);
    for (const e of errors) console.log(`  ${e.backend} / ${e.scenario}: ${e.message}`);
  }
  if (targets.warnings.length > 0) {
    console.log("");
    for (const warning of targets.warnings) console.log(`warning: ${warning}`);
  }

  // The peers never change the exit code: their failures are listed with their table.
  let peers: PeerReport | null = null;
  try {
    if (peerRun !== null && !interrupted) {
      const result = await peerRun.run(values, failed);
      peers = result.report;
      console.log("");
      console.log(result.table);
    }
  } catch (error) {
    console.log("");
    console.log(`peers: FAILED: ${messageOf(error)}`);
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }

  if (options.jsonFile !== null) {
    const report: BenchReport & { peers?: PeerReport } = {
      environment,
      settings: { mode, ...settings, backends: backends.join(",") },
      results: rows,
      errors,
      warnings: targets.warnings,
      ...(peers === null ? {} : { peers }),
    };
    await Deno.writeTextFile(options.jsonFile, JSON.stringify(report, null, 2) + "\n");
    console.error(`wrote ${options.jsonFile}`);
  }
  return errors.length > 0 ? 1 : 0;
}

if (import.meta.main) {
  // Exit explicitly: a backend that failed to close in time (its processes
  // were killed, but a worker may be left) would otherwise keep us alive.
  Deno.exit(await main(Deno.args));
}
