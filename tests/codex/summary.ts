/**
 * The run's summary: per Codex version, each interop scenario against each
 * executor (pass or fail, requests answered, error answers, allowed
 * differences seen) and the differential suite. Each test records its
 * result as a JSON file under `.codex/captures/results/<run>/` (the test
 * modules of one `deno test` run share the process, not their module
 * state), and `.codex/captures/summary.md` is rewritten from them after
 * every record, so it always describes the run so far.
 *
 * @module
 */

import { EXECBRIDGE_ROOT } from "./executors.ts";
import { INSTALL_ROOT } from "./install.ts";

/** One executor's run of one interop scenario. */
export interface RunSummary {
  pass: boolean;
  /** Requests Codex sent that got an answer. */
  answered: number;
  /** Error answers. */
  errors: number;
  /** Error answers that count as failures (execbridge: unlike the reference's; reference: not a not-found probe). */
  unexpectedErrors: number;
  /** Differences from the reference not in the allowlist (execbridge only). */
  differing: number;
  /** Allowed differences seen, by id (execbridge only). */
  allowed: Record<string, number>;
  /** The first line of each problem. */
  problems: string[];
}

/** An interop scenario's result. */
export interface InteropRecord {
  suite: "interop";
  version: string;
  scenario: string;
  reference?: RunSummary;
  execbridge?: RunSummary;
}

/** The differential suite's result. */
export interface DifferentialRecord {
  suite: "differential";
  version: string;
  pass: boolean;
  steps: number;
  same: number;
  /** Allowed differences seen, by id. */
  allowed: Record<string, number>;
  /** The steps that differ beyond the allowlist. */
  differing: string[];
  /** Requests answered by each executor, and error answers. */
  reference: { answered: number; errors: number };
  execbridge: { answered: number; errors: number };
}

export type SummaryRecord = InteropRecord | DifferentialRecord;

/** Where the summary goes. */
export const SUMMARY_PATH = `${INSTALL_ROOT}captures/summary.md`;
const RESULTS_ROOT = `${INSTALL_ROOT}captures/results/`;

/** This process (pid and start time: a reused pid is another run). */
function runId(): string {
  let start = "0";
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    // Not Linux: the pid alone.
  }
  return `${Deno.pid}-${start}`;
}

const RUN = runId();

function fileName(record: SummaryRecord): string {
  const name = record.suite === "interop" ? record.scenario : "differential";
  return `${record.version}.${record.suite}.${name}.json`;
}

/** Records one result (merged with what this run recorded for it) and rewrites summary.md. */
export async function record(result: SummaryRecord): Promise<void> {
  const dir = `${RESULTS_ROOT}${RUN}/`;
  try {
    await Deno.stat(dir);
  } catch {
    // A new run: forget the results of earlier ones.
    await Deno.remove(RESULTS_ROOT, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
  }
  const path = `${dir}${fileName(result)}`;
  let merged: SummaryRecord = result;
  try {
    merged = { ...JSON.parse(await Deno.readTextFile(path)), ...result };
  } catch {
    // First record of it.
  }
  await Deno.writeTextFile(path, JSON.stringify(merged, null, 2));
  await Deno.writeTextFile(SUMMARY_PATH, await summaryText());
}

async function git(args: string[]): Promise<string> {
  try {
    const { stdout, success } = await new Deno.Command("git", {
      args: ["-C", EXECBRIDGE_ROOT, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout).trimEnd() : "(git failed)";
  } catch {
    return "(no git)";
  }
}

function allowedText(allowed: Record<string, number> | undefined): string {
  const entries = Object.entries(allowed ?? {});
  return entries.length === 0 ? "none" : entries.map(([id, n]) => `${id} ×${n}`).join(", ");
}

function runCell(run: RunSummary | undefined): string {
  if (run === undefined) return "(not run)";
  if (run.pass) return "pass";
  const why = [
    run.unexpectedErrors > 0 ? `${run.unexpectedErrors} error answer(s)` : "",
    run.differing > 0 ? `${run.differing} difference(s) not allowed` : "",
    ...run.problems.filter((p) => !/error answer|not in the allowlist|^capture:/.test(p)).map((p) =>
      p.split("\n")[0].slice(0, 80)
    ),
  ].filter((s) => s !== "");
  return `**FAIL**${why.length > 0 ? ` (${why.join("; ")})` : ""}`;
}

/** The summary of this run so far (markdown). */
export async function summaryText(): Promise<string> {
  const records: SummaryRecord[] = [];
  try {
    for await (const entry of Deno.readDir(`${RESULTS_ROOT}${RUN}/`)) {
      if (!entry.name.endsWith(".json")) continue;
      records.push(JSON.parse(await Deno.readTextFile(`${RESULTS_ROOT}${RUN}/${entry.name}`)));
    }
  } catch {
    // Nothing recorded yet.
  }
  const subject = await git(["log", "--format=%h %s", "-1"]);
  const head = subject.length > 100 ? `${subject.slice(0, 100)}…` : subject;
  const status = await git(["status", "--short", "src"]);
  const lines = [
    "# Codex interop summary",
    "",
    `execbridge: \`${head}\`; src/ working tree: ${
      status === "" ? "clean" : `\`${status.split("\n").join("`, `")}\``
    }`,
    "",
  ];
  const versions = [...new Set(records.map((r) => r.version))].sort();
  for (const version of versions) {
    lines.push(
      `## Codex ${version}`,
      "",
      "| scenario | reference | execbridge | requests answered (ref / exb) | error answers (ref / exb) | allowed differences seen (execbridge) |",
      "| -------- | --------- | ---------- | ----------------------------- | ------------------------- | ------------------------------------- |",
    );
    const interop = records.filter((r): r is InteropRecord =>
      r.suite === "interop" && r.version === version
    ).sort((a, b) => a.scenario.localeCompare(b.scenario));
    for (const r of interop) {
      const count = (run: RunSummary | undefined, key: "answered" | "errors") =>
        run === undefined ? "–" : String(run[key]);
      lines.push(
        `| ${r.scenario} | ${runCell(r.reference)} | ${runCell(r.execbridge)} | ${
          count(r.reference, "answered")
        } / ${count(r.execbridge, "answered")} | ${count(r.reference, "errors")} / ${
          count(r.execbridge, "errors")
        } | ${allowedText(r.execbridge?.allowed)} |`,
      );
    }
    for (
      const d of records.filter((r): r is DifferentialRecord =>
        r.suite === "differential" && r.version === version
      )
    ) {
      const outcome = d.pass
        ? `pass (${d.same} same, ${d.steps - d.same - d.differing.length} allowed)`
        : `**FAIL** (${d.differing.length} of ${d.steps} steps differ: ${d.differing.join("; ")})`;
      lines.push(
        `| differential (${d.steps} steps) | – | ${outcome} | ${d.reference.answered} / ${d.execbridge.answered} | ${d.reference.errors} / ${d.execbridge.errors} | ${
          allowedText(d.allowed)
        } |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}
