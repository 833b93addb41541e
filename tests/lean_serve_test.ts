/**
 * `deno run -A mod.ts serve` stays lean: it evaluates neither the MCP SDK
 * nor the TOML parser, an idle executor not even zod (the protocol's schemas
 * are built on the first message), and the serve command itself loads no
 * client and no MCP code. mod.ts re-exports the whole library, so the
 * library imports these packages, and the modules that build schemas with
 * zod, only with `import defer` (evaluated on first use) or `import()`, and
 * the CLI imports each command's module when it runs (docs/performance.md,
 * "Start-up").
 *
 * Two checks, neither timing-based: the module graph (`deno info --json`),
 * where an edge counts unless it is dynamic, type-only or deferred; and a
 * real `serve` run under an import map that puts a probe in front of each
 * of those packages' specifiers, which says so on stderr when it is
 * evaluated.
 */

import assert from "node:assert/strict";
import { connectExecutor } from "../mod.ts";
import { CONFIG, MOD } from "./support/cli.ts";
import { startExecutor } from "./support/executor_process.ts";

/** The packages `serve` never evaluates. */
const NEVER = [/^npm:\/?@modelcontextprotocol\/sdk@/, /^npm:\/?smol-toml@/];
/** The packages an executor evaluates on the first message, not at start-up. */
const ON_FIRST_MESSAGE = [/^npm:\/?zod@/];
const HEAVY = [...NEVER, ...ON_FIRST_MESSAGE];
/**
 * The npm packages `serve` evaluates at start-up: none. A new one on the
 * executor's path costs every executor its start-up time and memory: import
 * it lazily, or add it here knowingly (docs/performance.md, "Start-up").
 */
const SERVE_NPM_PACKAGES: string[] = [];
const isHeavy = (specifier: string): boolean => HEAVY.some((pattern) => pattern.test(specifier));
const isNever = (specifier: string): boolean => NEVER.some((pattern) => pattern.test(specifier));

interface GraphDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface GraphModule {
  specifier: string;
  kind: string;
  local?: string;
  npmPackage?: string;
  dependencies?: GraphDependency[];
}

interface Graph {
  modules: GraphModule[];
  redirects: Record<string, string>;
  npmPackages: Record<string, { dependencies: string[] }>;
}

/** A run-time edge of the module graph. */
interface Edge {
  /** As written in the importing module. */
  written: string;
  /** Resolved. */
  to: string;
  kind: "static" | "deferred" | "dynamic";
}

const MOD_URL = new URL("../mod.ts", import.meta.url).href;
const MAIN_URL = new URL("../src/cli/main.ts", import.meta.url).href;
const SERVE_COMMAND_URL = new URL("../src/cli/serve_command.ts", import.meta.url).href;

async function moduleGraph(): Promise<Graph> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", CONFIG, MOD],
    stdin: "null",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** The specifiers a module imports with `import defer * as name from "…"`. */
function deferredSpecifiers(source: string): Set<string> {
  const found = new Set<string>();
  for (
    const match of source.matchAll(/\bimport\s+defer\s+\*\s+as\s+\w+\s+from\s+["']([^"']+)["']/g)
  ) {
    found.add(match[1]);
  }
  return found;
}

/** Every module's run-time edges (type-only imports have no `code`: they are not edges). */
async function edgesOf(graph: Graph): Promise<Map<string, Edge[]>> {
  const edges = new Map<string, Edge[]>();
  for (const module of graph.modules) {
    if (module.local === undefined || module.dependencies === undefined) continue;
    const deferred = deferredSpecifiers(await Deno.readTextFile(module.local));
    const list: Edge[] = [];
    for (const dependency of module.dependencies) {
      if (dependency.code === undefined) continue;
      const to = graph.redirects[dependency.code.specifier] ?? dependency.code.specifier;
      const kind = dependency.isDynamic
        ? "dynamic"
        : deferred.has(dependency.specifier)
        ? "deferred"
        : "static";
      list.push({ written: dependency.specifier, to, kind });
    }
    edges.set(module.specifier, list);
  }
  return edges;
}

/**
 * What loading `roots` evaluates: their static closure, as a map from each
 * module to the chain of imports that reached it (for the failure message).
 */
function evaluated(edges: Map<string, Edge[]>, roots: string[]): Map<string, string[]> {
  const reached = new Map<string, string[]>(roots.map((root) => [root, [root]]));
  const queue = [...roots];
  while (queue.length > 0) {
    const from = queue.shift()!;
    for (const edge of edges.get(from) ?? []) {
      if (edge.kind !== "static" || reached.has(edge.to)) continue;
      reached.set(edge.to, [...reached.get(from)!, edge.to]);
      queue.push(edge.to);
    }
  }
  return reached;
}

/** The npm packages behind `modules`, with the packages they depend on. */
function npmPackagesOf(graph: Graph, modules: Iterable<string>): Set<string> {
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const packages = new Set<string>();
  const queue: string[] = [];
  for (const specifier of modules) {
    const id = bySpecifier.get(specifier)?.npmPackage;
    if (id !== undefined && !packages.has(id)) {
      packages.add(id);
      queue.push(id);
    }
  }
  while (queue.length > 0) {
    for (const id of graph.npmPackages[queue.shift()!]?.dependencies ?? []) {
      if (!packages.has(id)) {
        packages.add(id);
        queue.push(id);
      }
    }
  }
  return packages;
}

function relative(specifier: string): string {
  return specifier.replace(new URL("../", import.meta.url).href, "");
}

Deno.test("lean serve: the module graph of `mod.ts serve` holds neither the MCP SDK, smol-toml nor zod", async () => {
  const graph = await moduleGraph();
  const edges = await edgesOf(graph);

  const serve = evaluated(edges, [MOD_URL, MAIN_URL, SERVE_COMMAND_URL]);
  const heavy = [...serve].filter(([specifier]) => isHeavy(specifier));
  assert.deepEqual(
    heavy.map(([, chain]) => chain.map(relative).join(" → ")),
    [],
    "`serve` evaluates these (import them with `import defer` or `import()` instead)",
  );
  const heavyPackages = [...npmPackagesOf(graph, serve.keys())].filter((id) =>
    isHeavy(`npm:${id}`)
  );
  assert.deepEqual(heavyPackages, [], "an npm package `serve` evaluates depends on these");
  const names = [...npmPackagesOf(graph, serve.keys())].map((id) => id.replace(/(.)@.*$/, "$1"));
  assert.deepEqual(
    [...new Set(names)].sort(),
    SERVE_NPM_PACKAGES,
    "the npm packages `serve` evaluates changed (see SERVE_NPM_PACKAGES)",
  );

  // mod.ts runs the CLI through import(), and the CLI imports `serve` through import().
  const dynamic = (from: string, to: string) =>
    edges.get(from)?.some((edge) => edge.to === to && edge.kind === "dynamic") ?? false;
  assert.ok(dynamic(MOD_URL, MAIN_URL), "mod.ts should import src/cli/main.ts with import()");
  assert.ok(
    dynamic(MAIN_URL, SERVE_COMMAND_URL),
    "src/cli/main.ts should import serve_command.ts with import()",
  );

  // Not vacuous: the executor is there, its schemas are not (they are deferred), and the
  // library does use every package (through deferred or dynamic imports).
  assert.ok(serve.has(new URL("../src/server/serve.ts", import.meta.url).href));
  const schemas = new URL("../src/protocol/schemas.ts", import.meta.url).href;
  assert.ok(!serve.has(schemas), "src/protocol/schemas.ts is evaluated at start-up");
  assert.ok(
    [...edges.values()].flat().some((edge) => edge.to === schemas && edge.kind === "deferred"),
  );
  const everyEdge = [...edges.values()].flat();
  for (const pattern of NEVER) {
    assert.ok(
      everyEdge.some((edge) => pattern.test(edge.to) && edge.kind !== "static"),
      `the library no longer imports ${pattern} lazily: update this test`,
    );
  }
});

Deno.test("lean serve: the serve command loads no client and no MCP code, and the CLI no other command", async () => {
  const edges = await edgesOf(await moduleGraph());
  const command = evaluated(edges, [SERVE_COMMAND_URL]);
  const misplaced = [...command].filter(([specifier]) =>
    /\/src\/(client|mcp|rpc)\//.test(specifier) ||
    /\/src\/cli\/(bridge|mcp)_command\.ts$/.test(specifier)
  );
  assert.deepEqual(misplaced.map(([, chain]) => chain.map(relative).join(" → ")), []);
  const cli = evaluated(edges, [MAIN_URL]);
  assert.deepEqual([...cli.keys()].map(relative), ["src/cli/main.ts"]);
});

Deno.test("lean serve: an idle executor evaluates none of them; a running one zod only, on the first message", async () => {
  const graph = await moduleGraph();
  const edges = await edgesOf(graph);
  // Every specifier through which the library reaches either package, each behind a probe.
  const probed = new Map<string, string>();
  for (const edge of [...edges.values()].flat()) {
    if (isHeavy(edge.to) && !edge.written.startsWith("npm:")) probed.set(edge.written, edge.to);
  }
  assert.ok(probed.size >= 2, `probed specifiers: ${[...probed.keys()]}`);

  const dir = await Deno.makeTempDir({ prefix: "execbridge-lean-serve-" });
  try {
    const imports: Record<string, string> = JSON.parse(await Deno.readTextFile(CONFIG)).imports;
    let i = 0;
    for (const [written, target] of probed) {
      const probe = `${dir}/probe_${i++}.ts`;
      await Deno.writeTextFile(
        probe,
        `console.error(${JSON.stringify(`lean-serve probe: evaluated ${written}`)});\n` +
          `export * from ${JSON.stringify(target)};\n`,
      );
      imports[written] = new URL(`file://${probe}`).href;
    }
    const importMap = `${dir}/import_map.json`;
    await Deno.writeTextFile(importMap, JSON.stringify({ imports }));

    // The probes work: a program that imports each specifier sees every one evaluated.
    const control = `${dir}/control.ts`;
    await Deno.writeTextFile(
      control,
      [...probed.keys()].map((written) => `import ${JSON.stringify(written)};\n`).join(""),
    );
    const controlRun = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", CONFIG, "--import-map", importMap, control],
      stdin: "null",
    }).output();
    const controlErr = new TextDecoder().decode(controlRun.stderr);
    assert.equal(controlRun.code, 0, controlErr);
    for (const written of probed.keys()) {
      assert.ok(controlErr.includes(`lean-serve probe: evaluated ${written}\n`), controlErr);
    }

    // An executor that starts evaluates none of them (a probe writes to stderr while it is
    // evaluated, before the executor logs that it listens); one that serves a process and stops
    // evaluates zod, and neither of the others.
    const executor = await startExecutor(["--log-level", "info"], {
      denoFlags: ["--import-map", importMap],
    });
    try {
      await executor.waitForStderr(/listening on /);
      assert.doesNotMatch(executor.stderr(), /lean-serve probe/);
      const client = await connectExecutor(executor.url);
      try {
        const proc = await client.start({ processId: "lean", argv: ["true"] });
        assert.deepEqual(await proc.wait(), { exitCode: 0, signal: null });
      } finally {
        await client.close();
      }
    } finally {
      const status = await executor.stop();
      assert.equal(status.code, 0, executor.stderr());
    }
    const evaluatedNow = [...executor.stderr().matchAll(/lean-serve probe: evaluated (\S+)/g)]
      .map((match) => probed.get(match[1])!);
    assert.deepEqual(evaluatedNow.filter(isNever), [], executor.stderr());
    assert.ok(evaluatedNow.some((target) => /^npm:\/?zod@/.test(target)), executor.stderr());
    assert.match(executor.stderr(), /executor stopped/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
