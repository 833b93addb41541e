/**
 * Runs one scenario of the real Codex (`codex app-server` with the scripted
 * model) against one executor, through the recording proxy, and returns
 * what happened: the scenario's outcome, every request Codex sent to the
 * executor with its answer, and a normalized digest to compare executors.
 *
 * Used by interop_test.ts; see README.md.
 *
 * @module
 */

import { AppServer } from "./app_server.ts";
import {
  EVERYTHING_SERVER,
  type HttpMcpServer,
  MODEL_KEY_ENV,
  type StdioMcpServer,
  writeCodexHome,
} from "./codex_home.ts";
import { type ExecutorKind, startWsExecutor, type WsExecutor } from "./executors.ts";
import { INSTALL_ROOT } from "./install.ts";
import { ScriptedModel, type ScriptedTurn } from "./model_server.ts";
import {
  allowedSeen,
  type CompareContext,
  describeDifference,
  type Difference,
  diffValues,
} from "./allowed_differences.ts";
import {
  compareDigests,
  type Digest,
  digestLines,
  errorsUnlikeReference,
  isExpectedError,
  type NormalizeContext,
  normalizeText,
  normalizeValue,
  protocolDigest,
  unexpectedErrors,
} from "./normalize.ts";
import {
  clearStalePyenvLock,
  GroupProcess,
  killLeftovers,
  leftovers,
  tempDir,
  withTimeout,
} from "./processes.ts";
import { type Exchange, type Frame, WsLogger } from "./ws_logger.ts";

/** What a scenario's `run` gets. */
export interface ScenarioContext {
  kind: ExecutorKind;
  version: string;
  app: AppServer;
  model: ScriptedModel;
  logger: WsLogger;
  executor: WsExecutor;
  /** The workspace (Codex's cwd, on the executor's filesystem). */
  workspace: string;
  /** The run's temporary root (the workspace is `<root>/ws`). */
  root: string;
  /** The streamable HTTP MCP server's URL, when the scenario has one. */
  httpUrl: string | null;
  /** Starts a thread in the workspace; returns its id. */
  startThread(): Promise<string>;
}

/** One interop scenario. */
export interface Scenario {
  name: string;
  /** What it shows. */
  description: string;
  /** Files to create in the workspace (text, or bytes). */
  files?: Record<string, string | Uint8Array>;
  /** Place server-everything (stdio) on the executor as `everything`. */
  stdioMcp?: Partial<StdioMcpServer>;
  /** Run server-everything in streamableHttp mode and place it on the executor as `everything_http`. */
  httpMcp?: boolean;
  /** `sandbox_mode` (default danger-full-access). */
  sandbox?: "read-only" | "workspace-write" | "danger-full-access";
  /** The model's script (a function of the workspace, for paths). */
  turns?: (workspace: string) => ScriptedTurn[];
  /** Extra variables in Codex's environment. */
  codexEnv?: Record<string, string>;
  /** Drives Codex; returns the outcome (compared across executors after normalizing). */
  run(context: ScenarioContext): Promise<unknown>;
  /** Asserts that the outcome is right (throws otherwise). */
  check(outcome: unknown, run: ScenarioRun): void;
}

/** What one run produced. */
export interface ScenarioRun {
  kind: ExecutorKind;
  /** The normalized outcome (undefined when `run` threw). */
  outcome: unknown;
  /** The error `run` threw, if any. */
  error: Error | null;
  exchanges: Exchange[];
  notifications: Frame[];
  /** The client's own notifications (`initialized`). */
  clientNotifications: Frame[];
  /** The timing-independent digest of the scenario's frames (see normalize.ts). */
  digest: Digest;
  /** How this run's values were normalized. */
  normalize: NormalizeContext;
  /** The tool output items Codex sent back to the model (normalized), in call order. */
  modelToolOutputs: unknown[];
  /** Where the full capture was written. */
  capturePath: string;
  /** Processes of this run still alive after it was stopped (then killed). */
  leftovers: string[];
  /** The app-server's stderr tail (for failure messages). */
  appStderr: string;
  /** Model requests answered (count). */
  modelRequests: number;
  /** When the scenario's `run` ended (logger clock): requests sent later were cut off by the shutdown. */
  runEndedAt: number;
}

/** Where captures go (git-ignored, next to the installs). */
export const CAPTURE_ROOT = `${INSTALL_ROOT}captures/`;

async function startHttpMcp(): Promise<{ url: string; process: GroupProcess }> {
  const wrapper = new URL("./loopback_listen.mjs", import.meta.url).pathname;
  const process = new GroupProcess(
    "server-everything streamableHttp",
    "node",
    [wrapper, EVERYTHING_SERVER, "streamableHttp"],
    { env: { PORT: "0" } },
  );
  try {
    const line = await process.waitForLine((l) => l.startsWith("INTEROP_LISTENING "), 30_000);
    return { url: `http://127.0.0.1:${line.split(" ")[1]}/mcp`, process };
  } catch (error) {
    await process.stop();
    throw error;
  }
}

/** Runs `scenario` against an executor of `kind` with the Codex at `codex`. */
export async function runScenario(
  scenario: Scenario,
  kind: ExecutorKind,
  codex: string,
  version: string,
): Promise<ScenarioRun> {
  await clearStalePyenvLock();
  const root = await tempDir(`run-${kind}`);
  const workspace = `${root.path}/ws`;
  await Deno.mkdir(workspace);
  for (const [name, content] of Object.entries(scenario.files ?? {})) {
    const path = `${workspace}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
  }
  const cleanups: (() => Promise<void>)[] = [() => root.remove()];
  let executor: WsExecutor | null = null;
  let logger: WsLogger | null = null;
  let app: AppServer | null = null;
  let model: ScriptedModel | null = null;
  let outcome: unknown = undefined;
  let error: Error | null = null;
  let httpUrl: string | null = null;
  let homePath = "";
  let runEndedAt = Number.POSITIVE_INFINITY;
  try {
    executor = await startWsExecutor(kind, codex);
    cleanups.unshift(executor.stop);
    logger = WsLogger.start({ upstream: executor.url });
    const proxy = logger;
    cleanups.unshift(() => proxy.close());
    if (scenario.httpMcp) {
      const http = await startHttpMcp();
      httpUrl = http.url;
      cleanups.unshift(() => http.process.stop());
    }
    model = ScriptedModel.start(scenario.turns?.(workspace) ?? []);
    const scripted = model;
    cleanups.unshift(() => scripted.close());
    const stdioServers: StdioMcpServer[] = scenario.stdioMcp
      ? [{
        name: "everything",
        command: "node",
        args: [EVERYTHING_SERVER, "stdio"],
        cwd: workspace,
        ...scenario.stdioMcp,
      }]
      : [];
    const httpServers: HttpMcpServer[] = httpUrl ? [{ name: "everything_http", url: httpUrl }] : [];
    const home = await writeCodexHome({
      modelBaseUrl: model.baseUrl,
      executorUrl: logger.url,
      executorToken: executor.token,
      sandbox: scenario.sandbox,
      stdioServers,
      httpServers,
    });
    homePath = home.path;
    cleanups.unshift(() => home.remove());
    app = await AppServer.start({
      codex,
      codexHome: home.path,
      cwd: workspace,
      env: { [MODEL_KEY_ENV]: "interop-dummy-key", ...scenario.codexEnv },
    });
    const server = app;
    cleanups.unshift(() => server.close());
    const context: ScenarioContext = {
      kind,
      version,
      app,
      model,
      logger,
      executor,
      workspace,
      root: root.path,
      httpUrl,
      async startThread() {
        const started = await server.startThread({ cwd: workspace });
        return (started.thread as { id: string }).id;
      },
    };
    outcome = await scenario.run(context);
  } catch (e) {
    error = e instanceof Error ? e : new Error(String(e));
  }
  if (logger !== null) {
    runEndedAt = logger.elapsed();
    // Requests Codex sent during the scenario that are still in flight get up to 5 s to be
    // answered before the shutdown cuts them off (the digest still ends at runEndedAt).
    const proxy = logger;
    const end = runEndedAt;
    await withTimeout(
      proxy.waitFor(() => proxy.exchanges().every((e) => e.t >= end || e.response !== null)),
      5000,
      "answers to the requests in flight",
    ).catch(() => {});
  }
  const appStderr = app?.process.stderr() ?? "";
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (e) {
      console.error(`warning: cleanup of ${scenario.name} (${kind}): ${e}`);
    }
  }
  const left = await leftovers();
  if (left.length > 0) await killLeftovers();
  const normalize: NormalizeContext = {
    replacements: {
      [workspace]: "<WS>",
      [root.path]: "<ROOT>",
      ...(homePath ? { [homePath]: "<CODEX_HOME>" } : {}),
      ...Object.fromEntries(
        Object.entries(executor?.paths ?? {}).map(([from, to]) => [from, to]),
      ),
      ...(httpUrl ? { [new URL(httpUrl).host]: "127.0.0.1:<http>" } : {}),
    },
  };
  const exchanges = logger?.exchanges() ?? [];
  const notifications = logger?.serverNotifications() ?? [];
  // The digest covers the scenario, not the shutdown after it (whose frames depend on timing).
  const digest = protocolDigest(
    (logger?.frames ?? []).filter((f) => f.t <= runEndedAt),
    exchanges.filter((e) => e.t <= runEndedAt),
    notifications.filter((f) => f.t <= runEndedAt),
    normalize,
  );
  const capturePath = `${CAPTURE_ROOT}${version}/${scenario.name}.${kind}.txt`;
  await Deno.mkdir(`${CAPTURE_ROOT}${version}`, { recursive: true });
  const sections = [
    `# ${scenario.name} against ${kind} (Codex ${version})`,
    `# error: ${error ? error.stack ?? error.message : "none"}`,
    `# outcome: ${JSON.stringify(normalizeValue(outcome, normalize))}`,
    `# connection events: ${JSON.stringify(logger?.events ?? [])}`,
    "",
    "## frames",
    logger?.transcript(100_000) ?? "",
    "",
    "## digest",
    ...digestLines(digest),
    "",
    "## model requests",
    ...(model?.requests.map((r) => `${r.method} ${r.path} -> ${r.answeredWith}`) ?? []),
    "",
    "## app-server stderr (tail)",
    appStderr.split("\n").filter((l) => !l.includes("Unknown model")).slice(-60).join("\n"),
  ];
  await Deno.writeTextFile(capturePath, sections.join("\n") + "\n");
  return {
    kind,
    outcome: outcome === undefined ? undefined : normalizeValue(outcome, normalize),
    error,
    exchanges,
    notifications,
    clientNotifications: logger?.clientNotifications() ?? [],
    digest,
    normalize,
    modelToolOutputs: (model?.toolOutputs() ?? []).map((o) => normalizeValue(o.item, normalize)),
    capturePath,
    leftovers: left,
    appStderr,
    modelRequests: model?.responseRequests().length ?? 0,
    runEndedAt,
  };
}

/**
 * Every problem of a run on its own, as readable text (empty when there is
 * none): error answers, unanswered requests, a wrong outcome, processes
 * left behind. With `reference` (an execbridge run), an error answer is a
 * problem unless the reference answered the same request with the same
 * code; without it, only not-found answers to `fs/*` probes are expected.
 */
export function runProblems(
  scenario: Scenario,
  run: ScenarioRun,
  reference: ScenarioRun | null = null,
): string[] {
  const problems: string[] = [];
  const errors = reference === null
    ? unexpectedErrors(run.exchanges)
    : errorsUnlikeReference(run.exchanges, run.normalize, reference.exchanges, reference.normalize);
  if (errors.length > 0) {
    const first = errors[0];
    const params = JSON.stringify(first.params);
    problems.push(
      `${errors.length} request(s) got an error answer${
        reference === null ? "" : " the reference did not give"
      }; the first:\n` +
        `    -> ${first.method} ${params.length > 700 ? params.slice(0, 700) + "…" : params}\n` +
        `    <- error ${first.error!.code}: ${first.error!.message}\n` +
        `  methods that failed: ${[...new Set(errors.map((e) => e.method))].join(", ")}`,
    );
  }
  // Requests sent during the scenario had 5 s more to be answered; requests sent after it (e.g. an
  // MCP session's DELETE at shutdown) are cut off by the shutdown, not left unanswered.
  const unanswered = run.exchanges.filter((e) => e.response === null && e.t < run.runEndedAt);
  if (unanswered.length > 0) {
    problems.push(
      `${unanswered.length} request(s) sent during the scenario never answered (5 s grace): ${
        unanswered.map((e) => e.method).join(", ")
      }`,
    );
  }
  if (run.error !== null) problems.push(`the scenario failed: ${run.error.message}`);
  else {
    try {
      scenario.check(run.outcome, run);
    } catch (e) {
      problems.push(`wrong outcome: ${e instanceof Error ? e.message : e}`);
    }
  }
  if (run.leftovers.length > 0) {
    problems.push(`processes left running (killed now):\n    ${run.leftovers.join("\n    ")}`);
  }
  if (problems.length > 0) problems.push(`capture: ${run.capturePath}`);
  return problems;
}

/** The `environmentInfo` of a run's first initialize answer, or {}. */
function environmentInfo(run: ScenarioRun): Record<string, unknown> {
  const init = run.exchanges.find((e) => e.method === "initialize" && e.response !== null);
  const result = init?.response?.result as
    | { environmentInfo?: Record<string, unknown> }
    | undefined;
  return result?.environmentInfo ?? {};
}

/**
 * The reference's helper directories on its children's PATH (normalized):
 * its `prependPathDirs` and the arg0 helper directory it creates in its
 * CODEX_HOME (executors.ts gives it `<dir>/codex-home`).
 */
function referencePathDirs(reference: ScenarioRun): string[] {
  const dirs = (environmentInfo(reference).prependPathDirs ?? []) as string[];
  const native = dirs.map((d) => {
    try {
      return d.startsWith("file:") ? decodeURIComponent(new URL(d).pathname) : d;
    } catch {
      return d;
    }
  });
  return [
    ...native.map((d) => normalizeText(d, reference.normalize)),
    "<EXECUTOR_DIR>/codex-home/tmp/arg0-linux/codex-arg0<tmp>",
  ];
}

/** How an execbridge run compares with the reference run of the same scenario. */
export interface Comparison {
  /** Every difference, allowed or not (outcome, tool outputs, digest). */
  differences: Difference[];
  /** Readable problems (empty when the runs agree up to allowed differences). */
  problems: string[];
}

/**
 * Compares an execbridge run with the reference run: the outcome and the
 * tool outputs Codex sent the model must be equal (no allowance), and every
 * difference between the digests must be in the table of
 * allowed_differences.ts. Appends the differences to execbridge's capture.
 */
export async function compareRuns(
  reference: ScenarioRun,
  execbridge: ScenarioRun,
): Promise<Comparison> {
  const context: CompareContext = {
    referencePathDirs: referencePathDirs(reference),
    execbridgeCapabilities: (environmentInfo(execbridge).capabilities ?? {}) as Record<
      string,
      unknown
    >,
  };
  const outcome = (where: string, a: unknown, b: unknown) =>
    diffValues(a, b, { suite: "interop", kind: "outcome", where, method: "", context });
  const differences = [
    ...outcome("outcome", reference.outcome, execbridge.outcome),
    ...outcome(
      "tool outputs sent to the model",
      reference.modelToolOutputs,
      execbridge.modelToolOutputs,
    ),
    ...outcome("model requests", reference.modelRequests, execbridge.modelRequests),
    ...compareDigests(reference.digest, execbridge.digest, context),
  ];
  const failing = differences.filter((d) => d.allowed === null);
  const problems: string[] = [];
  if (failing.length > 0) {
    const shown = failing.slice(0, 15).map((d) => describeDifference(d));
    problems.push(
      `${failing.length} difference(s) from the reference not in the allowlist ` +
        `(allowed_differences.ts):\n    ${shown.join("\n    ")}` +
        (failing.length > 15 ? `\n    … ${failing.length - 15} more in the capture` : ""),
    );
  }
  const seen = allowedSeen(differences);
  const section = [
    "",
    "## differences from the reference",
    `# ${failing.length} not allowed; allowed: ${
      [...seen].map(([id, n]) => `${id} ×${n}`).join(", ") || "none"
    }`,
    ...differences.map((d) => describeDifference(d, 2000)),
    "",
  ];
  await Deno.writeTextFile(execbridge.capturePath, section.join("\n"), { append: true });
  if (problems.length > 0) problems.push(`capture: ${execbridge.capturePath}`);
  return { differences, problems };
}

/** Counts for the summary: requests answered, error answers (and how many were expected). */
export function requestCounts(
  run: ScenarioRun,
  reference: ScenarioRun | null = null,
): { answered: number; errors: number; unexpectedErrors: number } {
  const unexpected = reference === null || run.kind === "reference"
    ? run.exchanges.filter((e) => e.error !== null && !isExpectedError(e)).length
    : errorsUnlikeReference(run.exchanges, run.normalize, reference.exchanges, reference.normalize)
      .length;
  return {
    answered: run.exchanges.filter((e) => e.response !== null).length,
    errors: run.exchanges.filter((e) => e.error !== null).length,
    unexpectedErrors: unexpected,
  };
}
