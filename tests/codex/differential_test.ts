/**
 * Differential test: one fixed sequence of JSON-RPC requests, sent to
 * `codex exec-server --listen stdio` and to execbridge's `serve --listen
 * stdio` (the same newline-delimited JSON-RPC), every answer normalized and
 * compared, one test step per request. Covers every method both implement:
 * initialize, environment/info and /status, process/start, read, write
 * (writeId: a repeated one, an empty one, none), signal (an unknown one
 * too), terminate, and fs/readFile, writeFile, createDirectory,
 * getMetadata, readDirectory, remove, copy, canonicalize, walk, open,
 * readBlock, writeBlock, close, with `file://` paths, bad URIs and relative
 * paths, and http/request (buffered, streamed, redirects, errors) to a
 * loopback server of the test's own.
 *
 * Each step's answer (result, or error code and message), what it observed
 * after (a process's output and its exited/closed params, a streamed body)
 * and the answer's top-level keys are compared field by field; a difference
 * passes only when the allowlist of allowed_differences.ts names it (error
 * messages, execbridge's extension fields, the April dialect it also
 * accepts…). The keys of every kind of notification are compared at the
 * end. A table of every step (same / allowed: why / differs) is written to
 * `tests/codex/.codex/captures/<version>/differential.md`.
 *
 * Environment: EXECBRIDGE_INTEROP_CODEX_VERSIONS, EXECBRIDGE_INTEROP_ROOT
 * (see README.md).
 */

import assert from "node:assert/strict";
import {
  allowedDifference,
  allowedSeen,
  type CompareContext,
  describeDifference,
  type Difference,
  diffValues,
  WRITE_WITHOUT_ID_TEXT,
} from "./allowed_differences.ts";
import { type ExecutorKind, startStdioExecutor, type StdioExecutor } from "./executors.ts";
import { ensureCodex, selectedVersions } from "./install.ts";
import { CAPTURE_ROOT } from "./interop.ts";
import {
  type NormalizeContext,
  normalizeResult,
  normalizeText,
  normalizeValue,
} from "./normalize.ts";
import { clearStalePyenvLock, leftovers, tempDir, withTimeout } from "./processes.ts";
import { record } from "./summary.ts";

type Json = Record<string, unknown>;

/** A JSON-RPC client over a stdio executor (one message per line). */
class StdioRpc {
  readonly notifications: Json[] = [];
  /** Every message the executor sent, in order. */
  readonly received: Json[] = [];
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, (message: Json) => void>();
  #waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  #nextId = 1;
  #closed = false;
  readonly #reading: Promise<void>;

  constructor(readonly executor: StdioExecutor) {
    this.#writer = executor.process.child.stdin.getWriter();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    const reader = this.executor.process.child.stdout.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line === "") continue;
          let message: Json;
          try {
            message = JSON.parse(line);
          } catch {
            continue;
          }
          this.received.push(message);
          if (typeof message.method === "string") {
            this.notifications.push(message);
          } else if (typeof message.id === "number" && this.#pending.has(message.id)) {
            this.#pending.get(message.id)!(message);
            this.#pending.delete(message.id);
          }
          this.#wake();
        }
      }
    } catch {
      // Cancelled.
    } finally {
      reader.releaseLock();
      this.#closed = true;
      this.#wake();
    }
  }

  #wake(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) {
      if (this.#closed || w.predicate()) w.resolve();
      else this.#waiters.push(w);
    }
  }

  async send(message: Json): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(message) + "\n"));
  }

  /** A request; resolves with the whole response message. */
  async call(method: string, params: unknown, timeoutMs = 15_000): Promise<Json> {
    const id = this.#nextId++;
    const answer = new Promise<Json>((resolve) => this.#pending.set(id, resolve));
    await this.send({ id, method, params });
    return await withTimeout(answer, timeoutMs, `${this.executor.kind} ${method}`).catch((e) => ({
      id,
      error: { code: "timeout", message: String(e.message) },
    }));
  }

  /** Waits until a notification satisfies `predicate` (or times out: then returns false). */
  async waitFor(predicate: (n: Json) => boolean, timeoutMs = 15_000): Promise<boolean> {
    const check = () => this.notifications.some(predicate);
    if (check()) return true;
    await withTimeout(
      new Promise<void>((resolve) => this.#waiters.push({ predicate: check, resolve })),
      timeoutMs,
      "notification",
    ).catch(() => {});
    return check();
  }

  /** The output of `processId` so far, per stream, decoded. */
  output(processId: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of this.notifications) {
      const p = n.params as Json;
      if (n.method !== "process/output" || p.processId !== processId) continue;
      const stream = String(p.stream);
      out[stream] = (out[stream] ?? "") +
        new TextDecoder().decode(Uint8Array.fromBase64(String(p.chunk)));
    }
    return out;
  }

  /** A streamed HTTP body so far: its bytes decoded, whether it ended, its error. */
  httpBody(requestId: string): { body: string; done: boolean; error: unknown } {
    let body = "";
    let done = false;
    let error: unknown = null;
    for (const n of this.notifications) {
      const p = n.params as Json;
      if (n.method !== "http/request/bodyDelta" || p.requestId !== requestId) continue;
      body += new TextDecoder().decode(Uint8Array.fromBase64(String(p.deltaBase64 ?? "")));
      if (p.done === true) done = true;
      if (p.error !== null && p.error !== undefined) error = p.error;
    }
    return { body, done, error };
  }

  closed(processId: string): (n: Json) => boolean {
    return (n) => n.method === "process/closed" && (n.params as Json).processId === processId;
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.executor.stop();
    await this.#reading;
  }
}

/** What a step gets: the fixture directory and URI helpers. */
interface StepContext {
  fix: string;
  uri(relative: string): string;
  rpc: StdioRpc;
  /** The loopback HTTP server's origin (`http://127.0.0.1:PORT`). */
  http: string;
  /** A loopback port nothing listens on. */
  closedPort: number;
}

/** One request of the sequence (or a notification, or an action). */
interface Step {
  name: string;
  method?: string;
  params?: (c: StepContext) => unknown;
  /** Send as a notification (no answer). */
  notify?: boolean;
  /**
   * After the answer: wait for this (deterministic, no sleeps); returns
   * extra observations. Not run when the request got an error answer.
   */
  after?: (c: StepContext) => Promise<unknown>;
}

const b64 = (text: string) => new TextEncoder().encode(text).toBase64();

function processSteps(): Step[] {
  const start = (processId: string, argv: string[], extra: Json = {}): Step => ({
    name: `process/start ${processId}`,
    method: "process/start",
    params: (c) => ({
      processId,
      argv,
      cwd: c.uri(""),
      env: {},
      tty: false,
      ...extra,
    }),
  });
  const waitClosed = (processId: string) => async (c: StepContext) => {
    await c.rpc.waitFor(c.rpc.closed(processId));
    // The exited and closed params, without the process id and the seq.
    const params = (method: string) => {
      const n = c.rpc.notifications.find((n) =>
        n.method === method && (n.params as Json).processId === processId
      );
      if (n === undefined) return null;
      const { processId: _id, seq: _seq, ...rest } = n.params as Json;
      return rest;
    };
    return {
      exited: params("process/exited"),
      closed: params("process/closed"),
      output: c.rpc.output(processId),
    };
  };
  const waitOutput = (processId: string, text: string) => async (c: StepContext) => {
    await c.rpc.waitFor(() => (c.rpc.output(processId).stdout ?? "").includes(text));
    return { output: c.rpc.output(processId) };
  };
  return [
    {
      ...start("p-exit", ["/bin/sh", "-c", "printf out; sleep 0.05; printf err >&2; exit 3"]),
      after: waitClosed("p-exit"),
    },
    {
      name: "process/read after close",
      method: "process/read",
      params: () => ({ processId: "p-exit", afterSeq: 0 }),
    },
    {
      name: "process/read with maxBytes 1",
      method: "process/read",
      params: () => ({ processId: "p-exit", afterSeq: 0, maxBytes: 1 }),
    },
    start("p-dup", ["/bin/sleep", "30"]),
    {
      ...start("p-dup", ["/bin/sleep", "30"]),
      name: "process/start duplicate id",
    },
    { ...start("p-cat", ["/bin/cat"], { pipeStdin: true }) },
    {
      name: "process/write writeId w1",
      method: "process/write",
      params: () => ({ processId: "p-cat", chunk: b64("hello\n"), writeId: "w1" }),
      after: waitOutput("p-cat", "hello\n"),
    },
    {
      name: "process/write the same writeId again",
      method: "process/write",
      params: () => ({ processId: "p-cat", chunk: b64("hello\n"), writeId: "w1" }),
    },
    {
      name: "process/write empty writeId",
      method: "process/write",
      params: () => ({ processId: "p-cat", chunk: b64("empty-id\n"), writeId: "" }),
    },
    {
      name: "process/write without writeId",
      method: "process/write",
      params: () => ({ processId: "p-cat", chunk: b64(WRITE_WITHOUT_ID_TEXT) }),
    },
    {
      name: "process/write writeId w2 (then: was w1 written twice?)",
      method: "process/write",
      params: () => ({ processId: "p-cat", chunk: b64("bye\n"), writeId: "w2" }),
      after: waitOutput("p-cat", "bye\n"),
    },
    {
      name: "process/write to an unknown process",
      method: "process/write",
      params: () => ({ processId: "nope", chunk: b64("x"), writeId: "w1" }),
    },
    {
      name: "process/write to a process without pipeStdin",
      method: "process/write",
      params: () => ({ processId: "p-dup", chunk: b64("x"), writeId: "w1" }),
    },
    {
      name: "process/signal interrupt",
      method: "process/signal",
      params: () => ({ processId: "p-cat", signal: "interrupt" }),
      after: waitClosed("p-cat"),
    },
    {
      name: "process/signal an unknown signal",
      method: "process/signal",
      params: () => ({ processId: "p-dup", signal: "bogus" }),
    },
    {
      name: "process/signal an unknown process",
      method: "process/signal",
      params: () => ({ processId: "nope", signal: "interrupt" }),
    },
    {
      name: "process/terminate a running process",
      method: "process/terminate",
      params: () => ({ processId: "p-dup" }),
      after: waitClosed("p-dup"),
    },
    {
      name: "process/terminate it again",
      method: "process/terminate",
      params: () => ({ processId: "p-dup" }),
    },
    {
      name: "process/terminate an unknown process",
      method: "process/terminate",
      params: () => ({ processId: "nope" }),
    },
    {
      name: "process/read an unknown process",
      method: "process/read",
      params: () => ({ processId: "nope", afterSeq: 0 }),
    },
    {
      ...start("p-tty", ["/bin/sh", "-c", "test -t 1 && echo is-a-tty"], { tty: true }),
      after: waitClosed("p-tty"),
    },
    {
      ...start("p-env", [
        "/bin/sh",
        "-c",
        'echo "SET=$SET OVER=$OVER HOME=${HOME:+set} EXEC=${INTEROP_EXECUTOR_ONLY:-unset}"',
      ], {
        envPolicy: {
          inherit: "core",
          ignoreDefaultExcludes: false,
          exclude: [],
          set: { SET: "from-set" },
          includeOnly: [],
        },
        env: { OVER: "from-env" },
      }),
      after: waitClosed("p-env"),
    },
    {
      ...start("p-all", ["/bin/sh", "-c", 'echo "EXEC=${INTEROP_EXECUTOR_ONLY:-unset}"'], {
        envPolicy: {
          inherit: "all",
          ignoreDefaultExcludes: false,
          exclude: [],
          set: {},
          includeOnly: [],
        },
      }),
      after: waitClosed("p-all"),
    },
    {
      ...start("p-arg0", ["/bin/sh", "-c", "echo $0"], { arg0: "custom-arg0" }),
      after: waitClosed("p-arg0"),
    },
    {
      name: "process/start with a native cwd",
      method: "process/start",
      params: (c) => ({
        processId: "p-native",
        argv: ["/bin/true"],
        cwd: c.fix,
        env: {},
        tty: false,
      }),
    },
    {
      name: "process/start with a relative cwd",
      method: "process/start",
      params: () => ({
        processId: "p-rel",
        argv: ["/bin/true"],
        cwd: "relative/dir",
        env: {},
        tty: false,
      }),
    },
    {
      name: "process/start a missing program",
      method: "process/start",
      params: (c) => ({
        processId: "p-missing",
        argv: ["/nonexistent/program"],
        cwd: c.uri(""),
        env: {},
        tty: false,
      }),
    },
  ];
}

function fsSteps(): Step[] {
  const fs = (name: string, method: string, params: (c: StepContext) => unknown): Step => ({
    name,
    method,
    params,
  });
  return [
    fs(
      "fs/writeFile",
      "fs/writeFile",
      (c) => ({ path: c.uri("new.txt"), dataBase64: b64("new\n") }),
    ),
    fs("fs/readFile", "fs/readFile", (c) => ({ path: c.uri("new.txt") })),
    fs("fs/readFile missing", "fs/readFile", (c) => ({ path: c.uri("missing.txt") })),
    fs("fs/readFile a directory", "fs/readFile", (c) => ({ path: c.uri("sub") })),
    fs(
      "fs/writeFile bad base64",
      "fs/writeFile",
      (c) => ({ path: c.uri("bad.txt"), dataBase64: "%%%" }),
    ),
    fs(
      "fs/writeFile missing parent",
      "fs/writeFile",
      (c) => ({ path: c.uri("no/such/x.txt"), dataBase64: "" }),
    ),
    fs(
      "fs/createDirectory recursive",
      "fs/createDirectory",
      (c) => ({ path: c.uri("d1/d2"), recursive: true }),
    ),
    fs(
      "fs/createDirectory non-recursive, missing parent",
      "fs/createDirectory",
      (c) => ({ path: c.uri("x1/x2"), recursive: false }),
    ),
    fs(
      "fs/createDirectory existing, non-recursive",
      "fs/createDirectory",
      (c) => ({ path: c.uri("d1"), recursive: false }),
    ),
    fs("fs/getMetadata file", "fs/getMetadata", (c) => ({ path: c.uri("a.txt") })),
    fs("fs/getMetadata directory", "fs/getMetadata", (c) => ({ path: c.uri("sub") })),
    fs("fs/getMetadata symlink", "fs/getMetadata", (c) => ({ path: c.uri("link") })),
    fs("fs/getMetadata missing", "fs/getMetadata", (c) => ({ path: c.uri("missing") })),
    fs("fs/readDirectory", "fs/readDirectory", (c) => ({ path: c.uri("") })),
    fs("fs/readDirectory a file", "fs/readDirectory", (c) => ({ path: c.uri("a.txt") })),
    fs(
      "fs/copy file",
      "fs/copy",
      (c) => ({ sourcePath: c.uri("a.txt"), destinationPath: c.uri("copy.txt"), recursive: false }),
    ),
    fs(
      "fs/copy directory",
      "fs/copy",
      (c) => ({ sourcePath: c.uri("sub"), destinationPath: c.uri("subcopy"), recursive: true }),
    ),
    fs(
      "fs/copy directory without recursive",
      "fs/copy",
      (c) => ({ sourcePath: c.uri("sub"), destinationPath: c.uri("subcopy2"), recursive: false }),
    ),
    fs(
      "fs/copy into itself",
      "fs/copy",
      (c) => ({ sourcePath: c.uri("sub"), destinationPath: c.uri("sub/inner"), recursive: true }),
    ),
    fs("fs/readFile the copy", "fs/readFile", (c) => ({ path: c.uri("copy.txt") })),
    fs("fs/canonicalize dot-dot", "fs/canonicalize", (c) => ({ path: c.uri("sub/../a.txt") })),
    fs("fs/canonicalize symlink", "fs/canonicalize", (c) => ({ path: c.uri("link") })),
    fs("fs/canonicalize missing", "fs/canonicalize", (c) => ({ path: c.uri("missing") })),
    fs("fs/walk", "fs/walk", (c) => ({
      path: c.uri(""),
      options: {
        maxDepth: 6,
        maxDirectories: 2000,
        maxEntries: 20000,
        followDirectorySymlinks: true,
        pruneHiddenDirectories: true,
      },
    })),
    fs("fs/walk maxEntries 2", "fs/walk", (c) => ({
      path: c.uri("sub"),
      options: {
        maxDepth: 1,
        maxDirectories: 10,
        maxEntries: 2,
        followDirectorySymlinks: false,
        pruneHiddenDirectories: false,
      },
    })),
    fs("fs/walk without options", "fs/walk", (c) => ({ path: c.uri("") })),
    fs("fs/open read", "fs/open", (c) => ({ handleId: "h1", path: c.uri("a.txt"), mode: "read" })),
    fs(
      "fs/open the same handle id",
      "fs/open",
      (c) => ({ handleId: "h1", path: c.uri("a.txt"), mode: "read" }),
    ),
    fs("fs/readBlock 0..5", "fs/readBlock", () => ({ handleId: "h1", offset: 0, len: 5 })),
    fs("fs/readBlock to the end", "fs/readBlock", () => ({ handleId: "h1", offset: 6, len: 100 })),
    fs(
      "fs/readBlock past the end",
      "fs/readBlock",
      () => ({ handleId: "h1", offset: 100, len: 10 }),
    ),
    fs(
      "fs/readBlock unknown handle",
      "fs/readBlock",
      () => ({ handleId: "nope", offset: 0, len: 1 }),
    ),
    fs(
      "fs/writeBlock on a read handle",
      "fs/writeBlock",
      () => ({ handleId: "h1", offset: 0, chunk: b64("x") }),
    ),
    fs("fs/close", "fs/close", () => ({ handleId: "h1" })),
    fs("fs/close again", "fs/close", () => ({ handleId: "h1" })),
    fs(
      "fs/open replace",
      "fs/open",
      (c) => ({ handleId: "w1", path: c.uri("w.txt"), mode: "replace" }),
    ),
    fs("fs/writeBlock 0", "fs/writeBlock", () => ({ handleId: "w1", offset: 0, chunk: b64("hi") })),
    fs(
      "fs/writeBlock 2",
      "fs/writeBlock",
      () => ({ handleId: "w1", offset: 2, chunk: b64(" there\n") }),
    ),
    fs("fs/close the writer", "fs/close", () => ({ handleId: "w1" })),
    fs("fs/readFile what was written", "fs/readFile", (c) => ({ path: c.uri("w.txt") })),
    fs(
      "fs/open missing file",
      "fs/open",
      (c) => ({ handleId: "h2", path: c.uri("missing"), mode: "read" }),
    ),
    fs(
      "fs/open bad mode",
      "fs/open",
      (c) => ({ handleId: "h3", path: c.uri("a.txt"), mode: "bogus" }),
    ),
    fs("fs/remove file", "fs/remove", (c) => ({ path: c.uri("copy.txt") })),
    fs(
      "fs/remove directory recursive",
      "fs/remove",
      (c) => ({ path: c.uri("subcopy"), recursive: true }),
    ),
    fs(
      "fs/remove non-empty, not recursive",
      "fs/remove",
      (c) => ({ path: c.uri("d1"), recursive: false, force: false }),
    ),
    fs("fs/remove missing, force", "fs/remove", (c) => ({ path: c.uri("missing"), force: true })),
    fs(
      "fs/remove missing, no force",
      "fs/remove",
      (c) => ({ path: c.uri("missing"), force: false }),
    ),
    fs("fs/readFile a native absolute path", "fs/readFile", (c) => ({ path: `${c.fix}/a.txt` })),
    fs("fs/readFile a relative path", "fs/readFile", () => ({ path: "relative.txt" })),
    fs("fs/readFile an http URI", "fs/readFile", () => ({ path: "http://example.invalid/a.txt" })),
    fs(
      "fs/readFile a file URI with a host",
      "fs/readFile",
      (c) => ({ path: `file://otherhost${c.fix}/a.txt` }),
    ),
    fs(
      "fs/readFile a percent-encoded URI",
      "fs/readFile",
      (c) => ({ path: c.uri("with space.txt") }),
    ),
    fs("fs/readFile with a sandbox", "fs/readFile", (c) => ({
      path: c.uri("a.txt"),
      sandbox: null,
    })),
    fs("unknown method", "nope/nope", () => ({})),
  ];
}

function httpSteps(): Step[] {
  const request = (
    name: string,
    params: (c: StepContext) => Json,
    after?: (c: StepContext) => Promise<unknown>,
  ): Step => ({
    name,
    method: "http/request",
    params: (c) => ({
      method: "GET",
      headers: [],
      bodyBase64: null,
      timeoutMs: 10_000,
      redirectPolicy: "stop",
      streamResponse: false,
      ...params(c),
    }),
    after,
  });
  const streamed = (requestId: string) => async (c: StepContext) => {
    await c.rpc.waitFor(() => c.rpc.httpBody(requestId).done);
    return c.rpc.httpBody(requestId);
  };
  return [
    request("http/request GET, buffered", (c) => ({ url: `${c.http}/text`, requestId: "h-1" })),
    request("http/request POST with a body and headers", (c) => ({
      method: "POST",
      url: `${c.http}/echo`,
      headers: [
        { name: "content-type", value: "text/plain" },
        { name: "x-interop", value: "one" },
        { name: "x-interop", value: "two" },
        { name: "user-agent", value: "codex-differential" },
        { name: "accept", value: "*/*" },
      ],
      bodyBase64: b64("posted body"),
      requestId: "h-2",
    })),
    request("http/request: the headers the server receives", (c) => ({
      url: `${c.http}/headers`,
      headers: [{ name: "user-agent", value: "codex-differential" }],
      requestId: "h-3",
    })),
    request(
      "http/request GET, streamed",
      (c) => ({ url: `${c.http}/stream`, requestId: "h-4", streamResponse: true }),
      streamed("h-4"),
    ),
    request(
      "http/request a gzip-encoded response",
      (c) => ({ url: `${c.http}/gzip`, requestId: "h-10" }),
    ),
    request("http/request a 404", (c) => ({ url: `${c.http}/missing`, requestId: "h-5" })),
    request(
      "http/request a redirect, redirectPolicy stop",
      (c) => ({ url: `${c.http}/redirect`, requestId: "h-6", redirectPolicy: "stop" }),
    ),
    request(
      "http/request a redirect, no redirectPolicy",
      (c) => ({ url: `${c.http}/redirect`, requestId: "h-6b" }),
    ),
    request(
      "http/request a redirect, redirectPolicy follow",
      (c) => ({ url: `${c.http}/redirect`, requestId: "h-7", redirectPolicy: "follow" }),
    ),
    request(
      "http/request a closed port",
      (c) => ({ url: `http://127.0.0.1:${c.closedPort}/`, requestId: "h-8" }),
    ),
    request("http/request an ftp URL", () => ({ url: "ftp://127.0.0.1/x", requestId: "h-9" })),
  ];
}

/**
 * The loopback HTTP server the http/request steps reach: fixed bodies and
 * headers, an echo of what it received.
 */
function startHttpServer(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const text = (body: string, status = 200, headers: Record<string, string> = {}) =>
      new Response(body, {
        status,
        headers: { "content-type": "text/plain", "x-fixed": "yes", ...headers },
      });
    if (path === "/text") return text("hello http\n");
    if (path === "/echo") {
      return text(
        `${req.method} ${await req.text()} x-interop=${req.headers.get("x-interop")}`,
        201,
      );
    }
    if (path === "/headers") {
      const seen = [...req.headers].filter(([name]) => name !== "host")
        .map(([name, value]) => `${name}: ${value}`).sort();
      return text(seen.join("\n") + "\n");
    }
    if (path === "/stream") {
      const parts = ["part one\n", "part two\n"];
      return new Response(
        new ReadableStream({
          pull(controller) {
            const next = parts.shift();
            if (next === undefined) controller.close();
            else controller.enqueue(new TextEncoder().encode(next));
          },
        }),
        { headers: { "content-type": "text/plain", "x-fixed": "yes" } },
      );
    }
    if (path === "/redirect") return text("", 302, { location: "/text" });
    if (path === "/gzip") {
      // Compressed only for a client that says it accepts gzip, as a real server would.
      const body = "compressed body\n";
      if (!/\bgzip\b/.test(req.headers.get("accept-encoding") ?? "")) return text(body);
      const gzip = new Blob([body]).stream().pipeThrough(new CompressionStream("gzip"));
      const bytes = new Uint8Array(await new Response(gzip).arrayBuffer());
      return new Response(bytes, {
        headers: { "content-type": "text/plain", "content-encoding": "gzip", "x-fixed": "yes" },
      });
    }
    return text("nope\n", 404);
  });
}

/** A loopback port that was free a moment ago (nothing listens on it). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const STEPS: Step[] = [
  {
    name: "process/start before initialize",
    method: "process/start",
    params: (c) => ({
      processId: "early",
      argv: ["/bin/true"],
      cwd: c.uri(""),
      env: {},
      tty: false,
    }),
  },
  {
    name: "initialize",
    method: "initialize",
    params: () => ({ clientName: "codex-differential", resumeSessionId: null }),
  },
  { name: "initialized", method: "initialized", params: () => ({}), notify: true },
  { name: "environment/info", method: "environment/info", params: () => null },
  { name: "environment/status", method: "environment/status", params: () => null },
  ...processSteps(),
  ...fsSteps(),
  ...httpSteps(),
];

/** What one executor answered to one step. */
interface StepResult {
  name: string;
  method: string;
  /** The request's params, normalized (for reading). */
  request: unknown;
  /** The request's params as sent (for the allowlist's rules, e.g. "a native path"). */
  rawRequest: unknown;
  /** The normalized answer: `{result}`, `{error: {code, message}}` or "(notification)". */
  answer: unknown;
  /** What the step observed after the answer (normalized). */
  after: unknown;
  /** The answer's top-level keys (and its error's), as `{key: true}`. */
  envelope: Record<string, true> | null;
  /** The raw response line. */
  raw: unknown;
}

/** What is compared of a step. */
function compared(r: StepResult): Json {
  return { answer: r.answer, after: r.after, envelope: r.envelope };
}

/** The keys of a message, and of its error, as `{key: true}`. */
function envelopeOf(message: Json): Record<string, true> {
  const keys = Object.keys(message);
  if (message.error && typeof message.error === "object") {
    keys.push(...Object.keys(message.error).map((k) => `error.${k}`));
  }
  return Object.fromEntries(keys.sort().map((k) => [k, true as const]));
}

/**
 * The keys of every kind of notification the executor sent during the
 * sequence, and of their params (process/exited and /closed params are
 * compared per process in the steps).
 */
function notificationEnvelopes(rpc: StdioRpc): Json {
  const out: Record<string, Record<string, true>> = {};
  for (const n of rpc.notifications) {
    const method = String(n.method);
    const keys = Object.keys(n);
    if (method !== "process/exited" && method !== "process/closed") {
      keys.push(...Object.keys((n.params ?? {}) as Json).map((k) => `params.${k}`));
    }
    out[method] ??= {};
    for (const k of keys) out[method][k] = true;
  }
  return out;
}

async function makeFixture(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/a.txt`, "hello world\n");
  await Deno.writeTextFile(`${dir}/with space.txt`, "spaced\n");
  await Deno.mkdir(`${dir}/sub/deeper`, { recursive: true });
  await Deno.writeTextFile(`${dir}/sub/b.txt`, "b\n");
  await Deno.writeTextFile(`${dir}/sub/c.txt`, "c\n");
  await Deno.writeTextFile(`${dir}/sub/deeper/d.txt`, "d\n");
  await Deno.symlink(`${dir}/a.txt`, `${dir}/link`);
}

function fileUri(path: string): string {
  return new URL(`file://${path.split("/").map(encodeURIComponent).join("/")}`).href;
}

/** Sorted copies of directory listings and walks, merged read chunks. */
function canonicalResult(method: string, result: unknown): unknown {
  if (result === null || typeof result !== "object") return result;
  const r = structuredClone(result) as Json;
  const byName = (a: Json, b: Json) =>
    JSON.stringify(a.fileName ?? a.path) < JSON.stringify(b.fileName ?? b.path) ? -1 : 1;
  if (Array.isArray(r.entries)) r.entries = (r.entries as Json[]).sort(byName);
  if (method === "process/read" && Array.isArray(r.chunks)) {
    const merged: Record<string, string> = {};
    for (const c of r.chunks as Json[]) {
      merged[String(c.stream)] = (merged[String(c.stream)] ?? "") +
        new TextDecoder().decode(Uint8Array.fromBase64(String(c.chunk)));
    }
    r.chunks = merged;
    r.nextSeq = "<seq>";
  }
  if (method === "fs/readFile" && typeof r.dataBase64 === "string") {
    r.dataBase64 = new TextDecoder().decode(Uint8Array.fromBase64(r.dataBase64));
  }
  if (method === "fs/readBlock" && typeof r.chunk === "string") {
    r.chunk = new TextDecoder().decode(Uint8Array.fromBase64(r.chunk));
  }
  if (method === "http/request") return normalizeResult(method, r, { replacements: {} });
  return r;
}

/** One executor's run of the sequence. */
interface SequenceRun {
  steps: StepResult[];
  /** The keys of each kind of notification (see {@link notificationEnvelopes}). */
  notificationEnvelopes: Json;
}

async function runSequence(
  kind: ExecutorKind,
  codex: string,
  http: string,
  port: number,
): Promise<SequenceRun> {
  await clearStalePyenvLock();
  const fixture = await tempDir(`fix-${kind}`);
  await makeFixture(fixture.path);
  const executor = await startStdioExecutor(kind, codex);
  const rpc = new StdioRpc(executor);
  const context: StepContext = {
    fix: fixture.path,
    uri: (relative) => fileUri(relative === "" ? fixture.path : `${fixture.path}/${relative}`),
    rpc,
    http,
    closedPort: port,
  };
  const normalize: NormalizeContext = {
    replacements: {
      [fixture.path]: "<FIX>",
      [fileUri(fixture.path)]: "file://<FIX>",
      [executor.dir]: "<EXECUTOR_DIR>",
      [fileUri(executor.dir)]: "file://<EXECUTOR_DIR>",
      [http]: "http://127.0.0.1:<http>",
      [`127.0.0.1:${port}`]: "127.0.0.1:<closed>",
    },
  };
  const results: StepResult[] = [];
  try {
    for (const step of STEPS) {
      const params = step.params?.(context);
      let raw: Json | null = null;
      if (step.notify) await rpc.send({ method: step.method, params });
      else raw = await rpc.call(step.method!, params);
      const error = raw?.error as { code: unknown; message: string; data?: unknown } | undefined;
      const after = step.after && error === undefined ? await step.after(context) : undefined;
      results.push({
        name: step.name,
        method: step.method!,
        request: normalizeValue(params, normalize),
        rawRequest: params,
        answer: raw === null ? "(notification)" : error !== undefined
          ? {
            error: {
              code: error.code,
              message: normalizeText(String(error.message), normalize),
              ...(error.data === undefined ? {} : { data: normalizeValue(error.data, normalize) }),
            },
          }
          : { result: normalizeValue(canonicalResult(step.method!, raw.result), normalize) },
        after: after === undefined ? undefined : normalizeValue(after, normalize),
        envelope: raw === null ? null : envelopeOf(raw),
        raw,
      });
    }
  } finally {
    await rpc.close();
    await fixture.remove();
  }
  return { steps: results, notificationEnvelopes: notificationEnvelopes(rpc) };
}

/** The differences of each step (by index), and of the notification envelopes (last). */
function stepDifferences(reference: SequenceRun, execbridge: SequenceRun): Difference[][] {
  const context = (): CompareContext => ({
    referencePathDirs: [],
    execbridgeCapabilities: {},
  });
  const perStep = reference.steps.map((ref, i) => {
    const exb = execbridge.steps[i];
    return diffValues(compared(ref), exb === undefined ? undefined : compared(exb), {
      suite: "differential",
      kind: "step",
      where: ref.name,
      method: ref.method,
      request: ref.rawRequest,
      context: context(),
    });
  });
  perStep.push(diffValues(reference.notificationEnvelopes, execbridge.notificationEnvelopes, {
    suite: "differential",
    kind: "envelope",
    where: "notifications (keys of each kind)",
    method: "",
    context: context(),
  }));
  return perStep;
}

function table(
  reference: SequenceRun,
  execbridge: SequenceRun,
  differences: Difference[][],
): string {
  const lines = [
    "| # | request | same? | reference | execbridge |",
    "| - | ------- | ----- | --------- | ---------- |",
  ];
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", "\\n").slice(0, 300);
  const stepCell = (r: StepResult | undefined) => {
    if (r === undefined) return "(not run)";
    const answer = r.answer as { error?: { code: unknown; message: string; data?: unknown } };
    const text = answer?.error !== undefined
      ? `error ${answer.error.code}: ${answer.error.message}${
        answer.error.data === undefined ? "" : ` (data ${JSON.stringify(answer.error.data)})`
      }`
      : JSON.stringify(r.answer);
    const after = r.after === undefined ? "" : ` then ${JSON.stringify(r.after)}`;
    return cell(text + after);
  };
  const verdict = (all: Difference[]) => {
    // execbridge's `jsonrpc` field is on every answer: said once in the legend.
    const diffs = all.filter((d) => d.allowed !== "jsonrpc-field");
    if (diffs.length === 0) return "yes";
    const failing = diffs.filter((d) => d.allowed === null);
    if (failing.length > 0) {
      return `**no**: ${cell(failing.map((d) => d.path || "(whole answer)").join(", "))}`;
    }
    const ids = [...new Set(diffs.map((d) => d.allowed!))];
    return ids.map((id) => `allowed: ${allowedDifference(id)?.reason ?? id} (${id})`).join("; ");
  };
  reference.steps.forEach((ref, i) => {
    lines.push(
      `| ${i + 1} | ${ref.name} | ${verdict(differences[i])} | ${stepCell(ref)} | ${
        stepCell(execbridge.steps[i])
      } |`,
    );
  });
  const last = differences[differences.length - 1];
  lines.push(
    `| ${reference.steps.length + 1} | notifications (keys of each kind) | ${verdict(last)} | ${
      cell(JSON.stringify(reference.notificationEnvelopes))
    } | ${cell(JSON.stringify(execbridge.notificationEnvelopes))} |`,
  );
  return lines.join("\n") + "\n";
}

/** Requests answered (a timed-out call has no answer), and error answers. */
function answered(run: SequenceRun): { answered: number; errors: number } {
  const calls = run.steps.filter((s) => s.raw !== null);
  const timedOut = (s: StepResult) =>
    ((s.raw as Json).error as Json | undefined)?.code === "timeout";
  return {
    answered: calls.filter((s) => !timedOut(s)).length,
    errors: calls.filter((s) => (s.raw as Json).error !== undefined && !timedOut(s)).length,
  };
}

for (const version of selectedVersions()) {
  const install = await ensureCodex(version);
  if (!install.ok) console.error(`codex differential test skipped: ${install.reason}`);
  Deno.test({
    name:
      `codex ${version} differential: the same JSON-RPC to codex exec-server and execbridge (stdio)`,
    ignore: !install.ok,
    async fn(t) {
      if (!install.ok) return;
      const server = startHttpServer();
      const http = `http://127.0.0.1:${server.addr.port}`;
      const port = closedPort();
      let reference: SequenceRun;
      let execbridge: SequenceRun;
      try {
        reference = await runSequence("reference", install.binary, http, port);
        execbridge = await runSequence("execbridge", install.binary, http, port);
      } finally {
        await server.shutdown();
      }
      const differences = stepDifferences(reference, execbridge);
      await Deno.mkdir(`${CAPTURE_ROOT}${version}`, { recursive: true });
      const report = `${CAPTURE_ROOT}${version}/differential.md`;
      await Deno.writeTextFile(
        report,
        `# Differential: codex exec-server ${version} vs execbridge (stdio)\n\n` +
          "Answers normalized (ids, session ids, timestamps, temporary paths, ports). Each step's\n" +
          "answer (error code and message), what was observed after it and the answer's keys are\n" +
          "compared; `same?` is `yes`, `allowed: <reason> (<id>)` (allowed_differences.ts) or\n" +
          "**no** with the fields that differ. Every message of execbridge also carries\n" +
          '`"jsonrpc": "2.0"` (allowed: jsonrpc-field); that is not repeated in the table.\n\n' +
          table(reference, execbridge, differences),
      );
      const all = differences.flat();
      const differing = [...reference.steps.map((s) => s.name), "notifications (keys of each kind)"]
        .filter((_, i) => differences[i].some((d) => d.allowed === null));
      await record({
        suite: "differential",
        version,
        pass: differing.length === 0,
        steps: differences.length,
        same: differences.filter((d) => d.length === 0).length,
        allowed: Object.fromEntries(allowedSeen(all)),
        differing,
        reference: answered(reference),
        execbridge: answered(execbridge),
      });
      const steps = [...reference.steps.map((s) => s.name), "notifications (keys of each kind)"];
      for (const [i, name] of steps.entries()) {
        await t.step(`${i + 1}. ${name}`, () => {
          const failing = differences[i].filter((d) => d.allowed === null);
          if (failing.length === 0) return;
          const ref = reference.steps[i];
          throw new Error(
            `${name} differs beyond the allowlist (see ${report}):\n` +
              (ref === undefined ? "" : `  request: ${JSON.stringify(ref.request)}\n`) +
              `  ${failing.map((d) => describeDifference(d)).join("\n  ")}`,
          );
        });
      }
      assert.deepEqual(await leftovers(), [], "no process of this test is left running");
    },
  });
}
