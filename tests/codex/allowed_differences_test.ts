/**
 * The allowlist of the Codex interop suites, without Codex: what it allows,
 * and that it allows nothing else (in particular not what the lead engineer
 * is fixing in src/: sandboxType, sandboxDenied, 128+n exit codes, the codes
 * of fs/readDirectory on a file and fs/writeFile with bad base64). Also
 * checks that README.md lists every entry.
 */

import assert from "node:assert/strict";
import {
  ALLOWED_DIFFERENCES,
  type CompareContext,
  type DiffBase,
  type Difference,
  diffValues,
} from "./allowed_differences.ts";
import type { Digest } from "./normalize.ts";
import { compareDigests, protocolDigest } from "./normalize.ts";

const context: CompareContext = {
  referencePathDirs: [
    "/opt/codex-path",
    "<EXECUTOR_DIR>/codex-home/tmp/arg0-linux/codex-arg0<tmp>",
  ],
  execbridgeCapabilities: { fsWatchMissing: false, environmentConfigRead: false },
};

function interop(method: string, kind: DiffBase["kind"] = "request", where = method): DiffBase {
  return { suite: "interop", kind, where, method, context };
}

function step(method: string, request: unknown = {}): DiffBase {
  return { suite: "differential", kind: "step", where: method, method, request, context };
}

/** The ids of the differences, `-` for one that is not allowed. */
function verdicts(differences: Difference[]): string[] {
  return differences.map((d) => `${d.path}: ${d.allowed ?? "-"}`);
}

Deno.test("allowlist: README.md lists every entry", async () => {
  const readme = await Deno.readTextFile(new URL("./README.md", import.meta.url));
  for (const entry of ALLOWED_DIFFERENCES) {
    assert.ok(readme.includes(`\`${entry.id}\``), `README.md lists ${entry.id}`);
  }
  assert.equal(
    new Set(ALLOWED_DIFFERENCES.map((d) => d.id)).size,
    ALLOWED_DIFFERENCES.length,
    "ids are unique",
  );
});

Deno.test("allowlist: environmentInfo host fields and capabilities, not the rest", () => {
  const ref = {
    answer: {
      result: {
        sessionId: "<session>",
        environmentInfo: {
          executorVersion: "0.171.0",
          providerId: "<provider>",
          cwd: "file:///a",
          platformOs: "linux",
          capabilities: { fsWatchMissing: true },
        },
      },
    },
  };
  const exb = {
    answer: {
      result: {
        sessionId: "<session>",
        writeNotifications: true,
        environmentInfo: {
          executorVersion: "0.1.0",
          cwd: "file:///b",
          platformOs: "macos",
          capabilities: { fsWatchMissing: false, sandboxBubblewrap: true },
        },
      },
    },
  };
  assert.deepEqual(verdicts(diffValues(ref, exb, interop("initialize"))), [
    "answer.result.environmentInfo.capabilities: environment-info-capabilities",
    "answer.result.environmentInfo.cwd: environment-info-host",
    "answer.result.environmentInfo.executorVersion: environment-info-host",
    "answer.result.environmentInfo.platformOs: -",
    "answer.result.environmentInfo.providerId: environment-info-host",
    "answer.result.writeNotifications: initialize-extension-fields",
  ]);
});

Deno.test("allowlist: what the lead engineer fixes in src/ is not allowed", () => {
  // sandboxType missing from a process/start result.
  assert.deepEqual(
    verdicts(diffValues(
      { answer: { result: { processId: "p", sandboxType: "none" } } },
      { answer: { result: { processId: "p" } } },
      interop("process/start"),
    )),
    ["answer.result.sandboxType: -"],
  );
  // sandboxDenied missing from process/exited, an exit code that is not 128+n (signal is allowed).
  assert.deepEqual(
    verdicts(diffValues(
      { exited: { exitCode: 130, sandboxDenied: false }, closed: {} },
      { exited: { exitCode: -1, signal: "SIGINT" }, closed: {} },
      interop("", "process", "process p"),
    )),
    ["exited.exitCode: -", "exited.sandboxDenied: -", "exited.signal: exited-signal"],
  );
  // sandboxDenied missing from process/read (its extension fields are allowed).
  assert.deepEqual(
    verdicts(diffValues(
      { answer: { result: { exited: true, sandboxDenied: false } } },
      { answer: { result: { exited: true, exitSeq: 2, closedSeq: 3 } } },
      step("process/read"),
    )),
    [
      "answer.result.closedSeq: read-extension-fields",
      "answer.result.exitSeq: read-extension-fields",
      "answer.result.sandboxDenied: -",
    ],
  );
  // Error codes: the message may differ, the code may not.
  for (
    const [method, ref, exb] of [["fs/readDirectory", -32603, -32600], [
      "fs/writeFile",
      -32600,
      -32602,
    ]] as const
  ) {
    assert.deepEqual(
      verdicts(diffValues(
        { answer: { error: { code: ref, message: "a" } } },
        { answer: { error: { code: exb, message: "b" } } },
        step(method, { path: "file:///x" }),
      )),
      ["answer.error.code: -", "answer.error.message: error-message"],
    );
  }
});

Deno.test("allowlist: header order, not header sets", () => {
  const h = (...names: string[]) => names.map((name) => ({ name, value: "v" }));
  const value = (headers: unknown) => ({ answer: { result: { headers, status: 200 } } });
  assert.deepEqual(
    verdicts(diffValues(value(h("a", "b")), value(h("b", "a")), interop("http/request"))),
    ["answer.result.headers: http-header-order"],
  );
  assert.deepEqual(
    verdicts(diffValues(value(h("a", "b")), value(h("b", "c")), interop("http/request"))),
    ["answer.result.headers (only on each side, in any order): -"],
  );
});

Deno.test("allowlist: capability-gated calls only when execbridge lacks the capability", () => {
  const reference: Digest = new Map([
    ["request fs/watchMissing {}", {
      kind: "request",
      method: "fs/watchMissing",
      value: { answer: { result: { watching: true } }, count: 1 },
    }],
    ["request fs/readFile {}", {
      kind: "request",
      method: "fs/readFile",
      value: { answer: { result: {} }, count: 1 },
    }],
  ]);
  assert.deepEqual(verdicts(compareDigests(reference, new Map(), context)), [
    ": -",
    ": capability-gated-calls",
  ]);
  const advertised = { ...context, execbridgeCapabilities: { fsWatchMissing: true } };
  assert.deepEqual(verdicts(compareDigests(reference, new Map(), advertised)), [": -", ": -"]);
});

Deno.test("allowlist: envelopes, MCP PATH, repeats, chunking", () => {
  assert.deepEqual(
    verdicts(diffValues(
      { id: true, result: true },
      { id: true, jsonrpc: true, result: true, extra: true },
      interop("", "envelope", "envelope s2c answer"),
    )),
    ["extra: -", "jsonrpc: jsonrpc-field"],
  );
  const env = (path: string) => `{"PATH":"${path}"}`;
  assert.deepEqual(
    verdicts(diffValues(
      { output: { stdout: env("/opt/codex-path:/usr/bin") }, outputNotifications: 3 },
      { output: { stdout: env("/usr/bin") }, outputNotifications: 2 },
      interop("", "process", "process mcp-stdio-1"),
    )),
    ["output.stdout: mcp-child-path", "outputNotifications: output-chunking"],
  );
  assert.deepEqual(
    verdicts(diffValues(
      { output: { stdout: env("/opt/codex-path:/usr/bin") } },
      { output: { stdout: env("/usr/local/bin") } },
      interop("", "process", "process mcp-stdio-1"),
    )),
    ["output.stdout: -"],
  );
  assert.deepEqual(
    verdicts(diffValues(
      { answer: { result: {} }, count: 2 },
      { answer: { result: {} }, count: 3 },
      interop("fs/getMetadata"),
    )),
    ["count: repeat-count"],
  );
  assert.deepEqual(
    verdicts(diffValues(
      { answer: { result: {} }, count: 1 },
      { answer: { result: {} }, count: 2 },
      interop("fs/writeFile"),
    )),
    ["count: -"],
  );
});

Deno.test("allowlist: the differential suite's intentional differences", () => {
  const error = (code: number, message = "m") => ({
    answer: { error: { code, message } },
    envelope: { id: true, error: true, "error.code": true, "error.message": true },
  });
  const result = (r: unknown) => ({ answer: { result: r }, envelope: { id: true, result: true } });
  // A native path: accepted (April dialect); a relative one is not allowed to be.
  assert.ok(
    diffValues(error(-32602), result({}), step("fs/readFile", { path: "/tmp/a.txt" }))
      .every((d) => d.allowed === "april-native-paths"),
  );
  assert.ok(
    diffValues(error(-32602), result({}), step("fs/readFile", { path: "a.txt" }))
      .some((d) => d.allowed === null),
  );
  // process/write without a writeId, and only without one.
  assert.ok(
    diffValues(error(-32602), result({ status: "accepted" }), step("process/write", {}))
      .every((d) => d.allowed === "april-write-without-writeid"),
  );
  assert.ok(
    diffValues(
      error(-32602),
      result({ status: "accepted" }),
      step("process/write", { writeId: "" }),
    )
      .some((d) => d.allowed === null),
  );
  // file://otherhost/: -32600 vs -32602.
  assert.deepEqual(
    verdicts(diffValues(
      error(-32600, "a"),
      error(-32602, "b"),
      step("fs/readFile", { path: "file://otherhost/tmp/a" }),
    )),
    ["answer.error.code: file-uri-host", "answer.error.message: error-message"],
  );
  // fs/writeBlock on a read handle: -32603 EBADF vs -32600.
  assert.deepEqual(
    verdicts(diffValues(
      error(-32603, "Bad file descriptor (os error 9)"),
      error(-32600, "opened to read"),
      step("fs/writeBlock"),
    )),
    ["answer.error.code: writeblock-read-handle", "answer.error.message: error-message"],
  );
  // Error data is compared.
  assert.deepEqual(
    verdicts(diffValues(
      { answer: { error: { code: -32603, message: "a", data: { kind: "spawnNotFound" } } } },
      { answer: { error: { code: -32603, message: "b" } } },
      step("process/start"),
    )),
    ["answer.error.data: -", "answer.error.message: error-message"],
  );
});

Deno.test("digest: a repeated terminate counts its first answer only, other repeats all", () => {
  const exchange = (id: number, method: string, result: unknown) => ({
    conn: 1,
    id,
    method,
    params: { processId: "p" },
    t: id,
    response: { id, result },
    error: null,
  });
  const digest = protocolDigest(
    [],
    [
      exchange(1, "process/terminate", { running: true }),
      exchange(2, "process/terminate", { running: false }),
      exchange(3, "fs/getMetadata", { isFile: false }),
      exchange(4, "fs/getMetadata", { isFile: true }),
    ],
    [],
    { replacements: {} },
  );
  assert.deepEqual(digest.get('request process/terminate {"processId":"p"}')?.value, {
    answer: { result: { running: true } },
    count: 2,
  });
  assert.deepEqual(digest.get('request fs/getMetadata {"processId":"p"}')?.value, {
    answers: [{ result: { isFile: false } }, { result: { isFile: true } }],
    count: 2,
  });
});
