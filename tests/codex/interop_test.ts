/**
 * The real Codex against both executors: every scenario runs `codex
 * app-server` (with a scripted model) once against Codex's own `codex
 * exec-server` and once against execbridge, through a recording proxy. Each
 * run must produce the scenario's outcome and leave no process behind. The
 * reference may get only not-found answers to probes as errors; execbridge
 * only the error answers the reference gave to the same request (same
 * code). execbridge's outcome and the tool outputs Codex sent the model must
 * equal the reference's, and every other difference between the two
 * normalized protocol digests must be in the allowlist of
 * allowed_differences.ts.
 *
 * Environment: EXECBRIDGE_INTEROP_TARGETS (`reference,execbridge`),
 * EXECBRIDGE_INTEROP_CODEX_VERSIONS (`0.169.0,0.171.0`), EXECBRIDGE_INTEROP_URL /
 * EXECBRIDGE_INTEROP_TOKEN (an execbridge executor to use instead of
 * starting one), EXECBRIDGE_INTEROP_ONLY (run the scenarios whose name
 * contains it). See README.md.
 */

import assert from "node:assert/strict";
import { EXECUTOR_ONLY_VALUE, EXECUTOR_ONLY_VAR } from "./executors.ts";
import { withTimeout } from "./processes.ts";
import { ensureCodex, selectedVersions } from "./install.ts";
import { allowedSeen, type Difference } from "./allowed_differences.ts";
import {
  compareRuns,
  requestCounts,
  runProblems,
  runScenario,
  type Scenario,
  type ScenarioRun,
} from "./interop.ts";
import type { ScriptedModel } from "./model_server.ts";
import { record, type RunSummary, summaryText } from "./summary.ts";

const TARGETS = (Deno.env.get("EXECBRIDGE_INTEROP_TARGETS") ?? "reference,execbridge")
  .split(",").map((t) => t.trim());
const ONLY = Deno.env.get("EXECBRIDGE_INTEROP_ONLY") ?? "";

/** A 4×3 red PNG. */
const PNG = Uint8Array.fromBase64(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAEElEQVR4nGP4z8AARww4OQD1MQv1NXv7ggAAAABJRU5ErkJggg==",
);

type Outcome = Record<string, unknown>;

function toolOutputOf(context: { model: { toolOutputs(): { callId: string; text: string }[] } }) {
  return context.model.toolOutputs().map((o) => ({ callId: o.callId, text: o.text }));
}

function textOf(result: Record<string, unknown>): string {
  const content = result.content as { type: string; text?: string }[] | undefined;
  return (content ?? []).map((c) => c.text ?? `[${c.type}]`).join("\n");
}

function methodsOf(run: ScenarioRun): string[] {
  return run.exchanges.map((e) => e.method);
}

/** Requests with `method` whose params satisfy `pick`. */
function requestsOf(run: ScenarioRun, method: string) {
  return run.exchanges.filter((e) => e.method === method);
}

const exec = (cmd: string, extra: Record<string, unknown> = {}) => ({
  name: "exec_command",
  arguments: { cmd, yield_time_ms: 10_000, login: false, ...extra },
});

const SCENARIOS: Scenario[] = [
  {
    name: "mcp-list-tools",
    description: "server-everything (stdio) placed on the executor: Codex lists its tools",
    stdioMcp: {},
    async run({ app, logger }) {
      const servers = await app.listMcpStatus();
      const server = servers.find((s) => s.name === "everything");
      // Codex stops the server it started for the listing: wait for its close (or 10 s), so
      // that both executors' captures end at the same point.
      await withTimeout(
        logger.waitFor(() =>
          logger.serverNotifications().some((f) => f.json?.method === "process/closed")
        ),
        10_000,
        "the listing server's process/closed",
      ).catch(() => {});
      return {
        names: servers.map((s) => s.name),
        serverInfo: (server?.serverInfo as { name?: string } | null)?.name ?? null,
        tools: Object.keys((server?.tools ?? {}) as Record<string, unknown>).sort(),
        toolsError: server?.toolsError ?? null,
      };
    },
    check(outcome) {
      const o = outcome as Outcome;
      assert.equal(o.serverInfo, "mcp-servers/everything");
      for (const tool of ["echo", "get-env", "get-sum", "get-tiny-image"]) {
        assert.ok((o.tools as string[]).includes(tool), `tool ${tool} listed: ${o.tools}`);
      }
    },
  },
  {
    name: "mcp-call-echo",
    description: "a tool call (`echo`) of server-everything on the executor",
    stdioMcp: {},
    async run(context) {
      const threadId = await context.startThread();
      const result = await context.app.callMcpTool(threadId, "everything", "echo", {
        message: "hello from codex",
      });
      return { text: textOf(result), isError: result.isError ?? false };
    },
    check(outcome, run) {
      assert.equal((outcome as Outcome).text, "Echo: hello from codex");
      const start = requestsOf(run, "process/start")[0]?.params as Record<string, unknown>;
      assert.ok(start, "process/start sent");
      assert.equal(start.pipeStdin, true);
      for (const write of requestsOf(run, "process/write")) {
        const params = write.params as Record<string, unknown>;
        assert.ok(typeof params.writeId === "string" && params.writeId !== "", "writeId set");
      }
    },
  },
  {
    name: "mcp-env-rules",
    description:
      "`env` literals, `env_vars` copied from Codex's environment, `source = \"remote\"` from the executor's",
    stdioMcp: {
      env: { INTEROP_LITERAL: "literal-value" },
      envVars: ["INTEROP_FROM_CALLER", { name: EXECUTOR_ONLY_VAR, source: "remote" }],
    },
    codexEnv: {
      INTEROP_FROM_CALLER: "caller-value",
      INTEROP_NOT_LISTED: "must-not-pass",
      [EXECUTOR_ONLY_VAR]: "caller-side-value",
    },
    async run(context) {
      const threadId = await context.startThread();
      const result = await context.app.callMcpTool(threadId, "everything", "get-env", {});
      const env = JSON.parse(textOf(result)) as Record<string, string>;
      const pick = (name: string) => env[name] ?? "<absent>";
      return {
        INTEROP_LITERAL: pick("INTEROP_LITERAL"),
        INTEROP_FROM_CALLER: pick("INTEROP_FROM_CALLER"),
        INTEROP_NOT_LISTED: pick("INTEROP_NOT_LISTED"),
        [EXECUTOR_ONLY_VAR]: pick(EXECUTOR_ONLY_VAR),
        hasPath: "PATH" in env,
        hasHome: "HOME" in env,
      };
    },
    check(outcome) {
      const o = outcome as Outcome;
      assert.equal(o.INTEROP_LITERAL, "literal-value");
      assert.equal(o.INTEROP_FROM_CALLER, "caller-value");
      assert.equal(o.INTEROP_NOT_LISTED, "<absent>");
      assert.equal(o[EXECUTOR_ONLY_VAR], EXECUTOR_ONLY_VALUE);
      assert.equal(o.hasPath, true);
    },
  },
  {
    name: "shell-echo",
    description: "the model runs `echo hello` (exec_command → process/start on the executor)",
    turns: () => [{ steps: [[exec("echo hello")]], message: "ran it" }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "run echo hello");
      const item = turn.items.find((i) => i.type === "commandExecution") ?? {};
      return {
        status: turn.status,
        outputs: toolOutputOf(context),
        command: { status: item.status, exitCode: item.exitCode, output: item.aggregatedOutput },
      };
    },
    check(outcome) {
      const o = outcome as { status: string; outputs: { text: string }[]; command: Outcome };
      assert.equal(o.status, "completed");
      assert.equal(o.command.exitCode, 0);
      assert.equal(o.command.output, "hello\n");
      assert.match(o.outputs[0].text, /Process exited with code 0[\s\S]*hello/);
    },
  },
  {
    name: "shell-interrupt",
    description: 'a long command interrupted by write_stdin "\\u0003" (→ process/signal)',
    turns: () => [{
      steps: [
        [exec("echo started; sleep 60; echo never", { yield_time_ms: 1000 })],
        [{
          name: "write_stdin",
          arguments: (model: ScriptedModel) => ({
            session_id: model.lastSessionId(),
            chars: "\u0003",
            yield_time_ms: 10_000,
          }),
        }],
      ],
      message: "interrupted",
    }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "run and interrupt");
      const item = turn.items.find((i) => i.type === "commandExecution") ?? {};
      return {
        status: turn.status,
        outputs: toolOutputOf(context),
        command: { exitCode: item.exitCode, output: item.aggregatedOutput },
      };
    },
    check(outcome, run) {
      const o = outcome as { outputs: { text: string }[]; command: Outcome };
      assert.match(o.outputs[0].text, /Process running with session ID/);
      assert.match(o.outputs[1].text, /Process exited with code 130/);
      assert.equal(o.command.output, "started\n");
      const signal = requestsOf(run, "process/signal")[0];
      assert.ok(signal, `process/signal sent (methods: ${methodsOf(run).join(" ")})`);
      assert.equal((signal.params as Outcome).signal, "interrupt");
    },
  },
  {
    name: "shell-tty-stdin",
    description: "a tty command fed on stdin by write_stdin (process/write with writeId)",
    turns: () => [{
      steps: [
        [exec("read line; echo got:$line", { tty: true, yield_time_ms: 1000 })],
        [{
          name: "write_stdin",
          arguments: (model: ScriptedModel) => ({
            session_id: model.lastSessionId(),
            chars: "hello\n",
            yield_time_ms: 10_000,
          }),
        }],
      ],
      message: "fed it",
    }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "feed a tty");
      return { status: turn.status, outputs: toolOutputOf(context) };
    },
    check(outcome, run) {
      const o = outcome as { outputs: { text: string }[] };
      assert.match(o.outputs[1].text, /Process exited with code 0/);
      assert.match(o.outputs[1].text, /got:hello/);
      const start = requestsOf(run, "process/start").find((e) => (e.params as Outcome).tty);
      assert.ok(start, "a process/start with tty: true");
      const write = requestsOf(run, "process/write")[0];
      assert.ok(write, "process/write sent");
      assert.equal(typeof (write.params as Outcome).writeId, "string");
    },
  },
  {
    name: "shell-background-terminate",
    description:
      "a background terminal (sleep 300) terminated with thread/backgroundTerminals/terminate",
    turns: () => [{
      steps: [[exec("echo bg-started; sleep 300", { yield_time_ms: 1000 })]],
      message: "left it running",
    }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "start a background job");
      const list = await context.app.request("thread/backgroundTerminals/list", { threadId }) as {
        data: { processId: string; command: string }[];
      };
      const terminal = list.data[0];
      const terminated = await context.app.request("thread/backgroundTerminals/terminate", {
        threadId,
        processId: terminal.processId,
      }) as { terminated: boolean };
      // The executor reports the exit and the close (deterministic: wait for the notifications).
      await withTimeout(
        context.logger.waitFor(() =>
          context.logger.serverNotifications().some((f) => f.json?.method === "process/closed")
        ),
        20_000,
        "process/closed of the terminated terminal",
      );
      const exited = context.logger.serverNotifications().find((f) =>
        f.json?.method === "process/exited"
      )!.json!.params as Outcome;
      return {
        status: turn.status,
        outputs: toolOutputOf(context),
        listed: list.data.map((t) => t.command),
        terminated: terminated.terminated,
        exitCode: exited.exitCode,
      };
    },
    check(outcome, run) {
      const o = outcome as Outcome;
      assert.deepEqual(o.listed, ["echo bg-started; sleep 300"]);
      assert.equal(o.terminated, true);
      const terminate = requestsOf(run, "process/terminate")[0];
      assert.ok(terminate, "process/terminate sent");
      assert.deepEqual(terminate.response?.result, { running: true });
    },
  },
  {
    name: "apply-patch",
    description: "the model edits a file and adds one with apply_patch (fs/readFile, fs/writeFile)",
    files: { "a.txt": "one\ntwo\n" },
    turns: () => [{
      steps: [[{
        name: "apply_patch",
        kind: "custom_tool_call",
        input: "*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+TWO\n" +
          "*** Add File: sub/b.txt\n+new file\n*** End Patch\n",
      }]],
      message: "patched",
    }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "patch a.txt");
      const read = (name: string) =>
        Deno.readTextFile(`${context.workspace}/${name}`).catch(() => "<missing>");
      return {
        status: turn.status,
        outputs: toolOutputOf(context),
        a: await read("a.txt"),
        b: await read("sub/b.txt"),
      };
    },
    check(outcome) {
      const o = outcome as Outcome;
      assert.equal(o.a, "one\nTWO\n");
      assert.equal(o.b, "new file\n");
    },
  },
  {
    name: "agents-md-and-skills",
    description:
      "AGENTS.md read into the instructions, a repo skill discovered (fs/walk, fs/canonicalize)",
    files: {
      "AGENTS.md": "# Interop agents file\nAlways say INTEROP-AGENTS-MARKER.\n",
      ".agents/skills/interop-demo/SKILL.md":
        "---\nname: interop-demo\ndescription: A demo skill of the interop harness.\n---\n\nRun `echo demo`.\n",
    },
    turns: () => [{ message: "read the instructions" }],
    async run(context) {
      const started = await context.app.startThread({ cwd: context.workspace });
      const threadId = (started.thread as { id: string }).id;
      const skills = await context.app.request("skills/list", {
        cwds: [context.workspace],
        forceReload: true,
      }) as { data: { skills: { name: string; scope: string }[] }[] };
      await context.app.runTurn(threadId, "hello");
      const prompt = JSON.stringify(context.model.responseRequests()[0]?.body ?? {});
      return {
        instructionSources: started.instructionSources,
        repoSkills: skills.data.flatMap((d) => d.skills).filter((s) => s.scope === "repo")
          .map((s) => s.name),
        agentsInPrompt: prompt.includes("INTEROP-AGENTS-MARKER"),
        skillInPrompt: prompt.includes("interop-demo"),
      };
    },
    check(outcome, run) {
      const o = outcome as Outcome;
      assert.deepEqual(o.instructionSources, ["<WS>/AGENTS.md"]);
      assert.deepEqual(o.repoSkills, ["interop-demo"]);
      assert.equal(o.agentsInPrompt, true);
      assert.equal(o.skillInPrompt, true);
      assert.ok(requestsOf(run, "fs/walk").length > 0, "fs/walk sent");
      assert.ok(requestsOf(run, "fs/canonicalize").length > 0, "fs/canonicalize sent");
    },
  },
  {
    name: "view-image",
    description: "view_image on a PNG in the workspace (read through the executor)",
    files: { "pic.png": PNG },
    turns: () => [{
      steps: [[{ name: "view_image", arguments: { path: "pic.png" } }]],
      message: "seen",
    }],
    async run(context) {
      const threadId = await context.startThread();
      const turn = await context.app.runTurn(threadId, "look at pic.png");
      const output = context.model.toolOutputs()[0];
      const raw = JSON.stringify(output?.item ?? {});
      const match = /data:image\/png;base64,([A-Za-z0-9+/=]+)/.exec(raw);
      return {
        status: turn.status,
        image: match ? match[1] : null,
      };
    },
    check(outcome) {
      const o = outcome as Outcome;
      assert.equal(o.status, "completed");
      assert.equal(o.image, PNG.toBase64(), "the image Codex sent is the file's bytes");
    },
  },
  {
    name: "http-mcp",
    description:
      "a streamable-HTTP MCP server placed on the executor (http/request + http/request/bodyDelta)",
    httpMcp: true,
    async run(context) {
      const servers = await context.app.listMcpStatus();
      const server = servers.find((s) => s.name === "everything_http");
      const threadId = await context.startThread();
      const result = await context.app.callMcpTool(threadId, "everything_http", "echo", {
        message: "over http",
      });
      return {
        tools: Object.keys((server?.tools ?? {}) as Record<string, unknown>).sort(),
        toolsError: server?.toolsError ?? null,
        text: textOf(result),
      };
    },
    check(outcome, run) {
      const o = outcome as Outcome;
      assert.ok((o.tools as string[]).includes("echo"), `tools: ${o.tools}`);
      assert.equal(o.text, "Echo: over http");
      assert.ok(requestsOf(run, "http/request").length > 0, "http/request sent");
    },
  },
  {
    name: "shell-sandboxed",
    description:
      "sandbox_mode workspace-write: process/start carries a sandbox; writes outside the workspace fail",
    sandbox: "workspace-write",
    turns: () => [{
      steps: [[
        exec(
          "echo inside > inside.txt && cat inside.txt; " +
            'touch "$HOME/.codex-interop-sandbox-probe" 2>&1 | sed "s/: .*: /: /"',
        ),
      ]],
      message: "tried",
    }],
    async run(context) {
      const probe = `${Deno.env.get("HOME")}/.codex-interop-sandbox-probe`;
      try {
        const threadId = await context.startThread();
        const turn = await context.app.runTurn(threadId, "try to write outside");
        const item = turn.items.find((i) => i.type === "commandExecution") ?? {};
        const escaped = await Deno.stat(probe).then(() => true, () => false);
        return { output: item.aggregatedOutput, escaped };
      } finally {
        await Deno.remove(probe).catch(() => {});
      }
    },
    check(outcome, run) {
      const o = outcome as Outcome;
      assert.match(String(o.output), /^inside\n/);
      assert.equal(o.escaped, false, "the write outside the workspace was denied");
      const start = requestsOf(run, "process/start")[0];
      const sandbox = (start?.params as Outcome | undefined)?.sandbox as Outcome | null;
      assert.ok(sandbox && typeof sandbox === "object", "process/start has a sandbox object");
    },
  },
];

function summarize(
  run: ScenarioRun,
  problems: string[],
  reference: ScenarioRun | null,
  differences: Difference[] = [],
): RunSummary {
  const counts = requestCounts(run, reference);
  return {
    pass: problems.length === 0,
    answered: counts.answered,
    errors: counts.errors,
    unexpectedErrors: counts.unexpectedErrors,
    differing: differences.filter((d) => d.allowed === null).length,
    allowed: Object.fromEntries(allowedSeen(differences)),
    problems: problems.map((p) => p.split("\n")[0]),
  };
}

const failed = (run: RunSummary | undefined, error: unknown): RunSummary =>
  run ?? {
    pass: false,
    answered: 0,
    errors: 0,
    unexpectedErrors: 0,
    differing: 0,
    allowed: {},
    problems: [`the harness failed: ${error instanceof Error ? error.message : error}`],
  };

for (const version of selectedVersions()) {
  const install = await ensureCodex(version);
  if (!install.ok) console.error(`codex interop tests skipped: ${install.reason}`);
  for (const scenario of SCENARIOS) {
    if (ONLY !== "" && !scenario.name.includes(ONLY)) continue;
    Deno.test({
      name: `codex ${version} interop: ${scenario.name} — ${scenario.description}`,
      ignore: !install.ok,
      async fn(t) {
        if (!install.ok) return;
        let reference: ScenarioRun | null = null;
        if (TARGETS.includes("reference")) {
          await t.step("against codex exec-server (reference)", async () => {
            let summary: RunSummary | undefined;
            try {
              reference = await runScenario(scenario, "reference", install.binary, version);
              const problems = runProblems(scenario, reference);
              summary = summarize(reference, problems, null);
              if (problems.length > 0) throw new Error(`reference:\n  ${problems.join("\n  ")}`);
            } catch (error) {
              summary = failed(summary, error);
              throw error;
            } finally {
              await record({
                suite: "interop",
                version,
                scenario: scenario.name,
                reference: summary,
              });
            }
          });
        }
        if (TARGETS.includes("execbridge")) {
          await t.step("against execbridge", async () => {
            let summary: RunSummary | undefined;
            try {
              const run = await runScenario(scenario, "execbridge", install.binary, version);
              const ref = reference as ScenarioRun | null;
              const problems = runProblems(scenario, run, ref?.error === null ? ref : null);
              let differences: Difference[] = [];
              if (ref !== null && ref.error === null) {
                const comparison = await compareRuns(ref, run);
                differences = comparison.differences;
                problems.push(...comparison.problems);
              } else if (ref !== null) {
                problems.push("not compared with the reference: the reference run failed");
              }
              summary = summarize(run, problems, ref, differences);
              if (problems.length > 0) throw new Error(`execbridge:\n  ${problems.join("\n  ")}`);
            } catch (error) {
              summary = failed(summary, error);
              throw error;
            } finally {
              await record({
                suite: "interop",
                version,
                scenario: scenario.name,
                execbridge: summary,
              });
            }
          });
        }
      },
    });
  }
}

Deno.test("codex interop: summary (also in tests/codex/.codex/captures/summary.md)", async () => {
  console.log(`\n${await summaryText()}`);
});
