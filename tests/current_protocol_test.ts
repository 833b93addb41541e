/**
 * The reference's current protocol on the wire, against a real `serve`
 * subprocess: file:// paths, writeId, process/signal, environment/*,
 * fs/canonicalize, fs/walk, file handles and bad input for each. The same
 * behaviours through the client library, in local and remote mode, are in
 * fs_test.ts and exec_process_test.ts.
 */

import assert from "node:assert/strict";
import { startExecutor } from "./support/executor_process.ts";
import { type Message, RawClient } from "./support/raw_client.ts";
import { ENV } from "./support/backends.ts";
import { VERSION } from "../src/version.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One executor and one initialized connection for a group of steps. */
async function withClient(fn: (client: RawClient) => Promise<void>): Promise<void> {
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  try {
    await fn(client);
  } finally {
    await client.close();
    await executor.stop();
  }
}

function fileUri(path: string): string {
  return "file://" + path.split("/").map(encodeURIComponent).join("/");
}

function errorOf(response: Message): { code: number; message: string; data?: unknown } {
  assert.ok(response.error, `expected an error, got ${JSON.stringify(response)}`);
  return response.error;
}

/** Output of a process until it closed, from its notifications. */
async function outputOf(client: RawClient, processId: string): Promise<string> {
  await client.waitNotification((m) =>
    m.method === "process/closed" && m.params.processId === processId
  );
  return client.notifications
    .filter((m) => m.method === "process/output" && m.params.processId === processId)
    .sort((a, b) => a.params.seq - b.params.seq)
    .map((m) => decoder.decode(Uint8Array.fromBase64(m.params.chunk)))
    .join("");
}

Deno.test("paths: file:// URIs and absolute paths are both taken; anything else is -32602 naming the field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge path " });
  try {
    await Deno.writeTextFile(`${dir}/a b.txt`, "spaced");
    await withClient(async (client) => {
      const forms = [
        `${dir}/a b.txt`,
        fileUri(`${dir}/a b.txt`),
        "file://localhost" + fileUri(`${dir}/a b.txt`).slice("file://".length),
      ];
      for (const path of forms) {
        const read = await client.request("fs/readFile", { path });
        assert.equal(decoder.decode(Uint8Array.fromBase64(read.result.dataBase64)), "spaced", path);
      }
      const bad: [string, RegExp][] = [
        ["a b.txt", /path: must be an absolute path or a file:\/\/ URI, got "a b.txt"/],
        ["file://otherhost/etc/hostname", /names the host "otherhost"/],
        ["file:///tmp/%ZZ", /invalid percent-encoding/],
        ["file:///tmp/x?q=1", /without a query or fragment/],
        ["http:///tmp/x", /must be an absolute path or a file:\/\/ URI/],
        ["file:///tmp/%00", /NUL/],
      ];
      for (const [path, message] of bad) {
        const error = errorOf(await client.request("fs/getMetadata", { path }));
        assert.equal(error.code, -32602, path);
        assert.match(error.message, /^invalid params for fs\/getMetadata: path: /);
        assert.match(error.message, message);
      }
      // A process's cwd: a URI works, a relative one is refused (it used to resolve against the
      // executor's own directory) and nothing starts.
      const started = await client.request("process/start", {
        processId: "pwd",
        argv: ["pwd"],
        cwd: fileUri(dir),
        env: ENV,
        tty: false,
      });
      assert.deepEqual(started.result, { processId: "pwd", sandboxType: "none" });
      assert.equal(await outputOf(client, "pwd"), `${dir}\n`);
      const relative = errorOf(
        await client.request("process/start", {
          processId: "rel",
          argv: ["pwd"],
          cwd: "tmp",
          env: ENV,
          tty: false,
        }),
      );
      assert.equal(relative.code, -32602);
      assert.match(
        relative.message,
        /^invalid params for process\/start: cwd: must be an absolute/,
      );
      const unknown = await client.request("process/read", { processId: "rel" });
      assert.match(errorOf(unknown).message, /unknown process id rel/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeId: a repeated id is answered with the original status and written once; an empty one is -32602", async () => {
  await withClient(async (client) => {
    await client.request("process/start", {
      processId: "cat",
      argv: ["cat"],
      cwd: "/",
      env: ENV,
      tty: false,
      pipeStdin: true,
    });
    const write = (chunk: string, writeId?: string) =>
      client.request("process/write", {
        processId: "cat",
        chunk: encoder.encode(chunk).toBase64(),
        ...(writeId === undefined ? {} : { writeId }),
      });
    assert.deepEqual((await write("one\n", "w1")).result, { status: "accepted" });
    assert.deepEqual((await write("one\n", "w1")).result, { status: "accepted" });
    assert.deepEqual((await write("two\n", "w2")).result, { status: "accepted" });
    assert.deepEqual((await write("one\n", "w1")).result, { status: "accepted" });
    const empty = errorOf(await write("x\n", ""));
    assert.equal(empty.code, -32602);
    assert.match(empty.message, /writeId: writeId must not be empty/);
    // Without a writeId (the April protocol) a write is simply applied.
    assert.deepEqual((await write("three\n")).result, { status: "accepted" });
    const unknown = await client.request("process/write", {
      processId: "nope",
      chunk: "",
      writeId: "w9",
    });
    assert.deepEqual(unknown.result, { status: "unknownProcess" });
    await client.request("process/write", {
      processId: "cat",
      chunk: "",
      closeStdin: true,
      writeId: "eof",
    });
    assert.equal(await outputOf(client, "cat"), "one\ntwo\nthree\n");
  });
});

Deno.test("process/signal: interrupt reaches the process group; an unknown signal is -32602; an unknown process gets nothing", async () => {
  await withClient(async (client) => {
    await client.request("process/start", {
      processId: "trap",
      argv: [
        "sh",
        "-c",
        "trap 'echo interrupted; exit 3' INT; echo ready; while :; do sleep 0.05; done",
      ],
      cwd: "/",
      env: ENV,
      tty: false,
    });
    await client.waitNotification((m) =>
      m.method === "process/output" && m.params.processId === "trap"
    );
    const bad = errorOf(
      await client.request("process/signal", { processId: "trap", signal: "kill" }),
    );
    assert.equal(bad.code, -32602);
    assert.match(bad.message, /signal: /);
    const missing = errorOf(await client.request("process/signal", { processId: "trap" }));
    assert.equal(missing.code, -32602);
    assert.deepEqual(
      (await client.request("process/signal", { processId: "nope", signal: "interrupt" })).result,
      {},
    );
    assert.deepEqual(
      (await client.request("process/signal", { processId: "trap", signal: "interrupt" })).result,
      {},
    );
    const exited = await client.waitNotification((m) =>
      m.method === "process/exited" && m.params.processId === "trap"
    );
    assert.equal(exited.params.exitCode, 3);
    assert.equal(await outputOf(client, "trap"), "ready\ninterrupted\n");
  });
});

Deno.test("a process that cannot start says why in error.data.kind, as the reference does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_spawn_" });
  await Deno.writeTextFile(`${dir}/not-executable`, "#!/bin/sh\n");
  try {
    await withClient(async (client) => {
      const start = (processId: string, argv: string[], cwd = dir) =>
        client.request("process/start", { processId, argv, cwd, env: ENV, tty: false });
      const cases: [string, string[], string | undefined, string, RegExp][] = [
        ["bare", ["no-such-program"], undefined, "spawnNotFound", /not found on PATH/],
        ["path", [`${dir}/missing`], undefined, "spawnNotFound", /program not found: /],
        ["cwd", ["true"], `${dir}/missing-dir`, "spawnNotFound", /missing-dir/],
        ["mode", [`${dir}/not-executable`], undefined, "spawnPermissionDenied", /not executable/],
      ];
      for (const [id, argv, cwd, kind, message] of cases) {
        const error = errorOf(await start(id, argv, cwd));
        assert.equal(error.code, -32603, id);
        assert.deepEqual(error.data, { kind }, id);
        assert.match(error.message, message, id);
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a signal death is reported as the reference does: 128 + the signal's number (130 after interrupt, 137 after terminate)", async () => {
  await withClient(async (client) => {
    const exitOf = (processId: string) =>
      client.waitNotification((m) =>
        m.method === "process/exited" && m.params.processId === processId
      );
    for (const processId of ["interrupted", "terminated"]) {
      await client.request("process/start", {
        processId,
        argv: ["sleep", "30"],
        cwd: "/",
        env: ENV,
        tty: false,
      });
    }
    const interrupted = exitOf("interrupted");
    await client.request("process/signal", { processId: "interrupted", signal: "interrupt" });
    assert.deepEqual((await interrupted).params, {
      processId: "interrupted",
      seq: 1,
      exitCode: 130,
      signal: "SIGINT",
      sandboxDenied: false,
    });
    const terminated = exitOf("terminated");
    await client.request("process/terminate", { processId: "terminated" });
    assert.equal((await terminated).params.exitCode, 137);
    const read = await client.request("process/read", { processId: "terminated" });
    assert.equal(read.result.exitCode, 137);
    assert.equal(read.result.sandboxDenied, false);
  });
});

Deno.test("environment/info and the initialize result describe the executor; environment/status is ready", async () => {
  const executor = await startExecutor([]);
  const client = await RawClient.connect(executor.url);
  try {
    const before = errorOf(await client.request("environment/info", {}));
    assert.equal(before.code, -32600);
    assert.match(before.message, /initialize before using environment methods/);
    const init = await client.request("initialize", {
      clientName: "codex-environment",
      resumeSessionId: null,
    });
    const info = init.result.environmentInfo;
    assert.equal(info.executorVersion, VERSION);
    assert.equal(info.platformOs, Deno.build.os);
    assert.match(info.cwd, /^file:\/\/\//);
    assert.match(info.tempDir, /^file:\/\/\//);
    assert.equal(typeof info.shell.name, "string");
    assert.equal(info.capabilities.fileWriteStreaming, true);
    assert.equal(info.capabilities.networkProxyLaunch, false);
    client.notify("initialized", {});
    assert.deepEqual((await client.request("environment/info", {})).result, info);
    assert.deepEqual((await client.request("environment/status", {})).result, { status: "ready" });
  } finally {
    await client.close();
    await executor.stop();
  }
});

Deno.test("the version environment/info reports is deno.json's", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, config.version);
});

Deno.test("fs/canonicalize and fs/walk answer in the form they were asked in", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_walk_" }));
  try {
    await Deno.mkdir(`${dir}/d/e`, { recursive: true });
    await Deno.writeTextFile(`${dir}/d/e/f`, "x");
    await Deno.writeTextFile(`${dir}/g`, "y");
    await Deno.symlink(`${dir}/d`, `${dir}/link`);
    await withClient(async (client) => {
      const viaUri = await client.request("fs/canonicalize", {
        path: fileUri(`${dir}/link/e/../e`),
      });
      assert.equal(viaUri.result.path, fileUri(`${dir}/d/e`));
      const native = await client.request("fs/canonicalize", { path: `${dir}/link` });
      assert.equal(native.result.path, `${dir}/d`);
      const missing = errorOf(await client.request("fs/canonicalize", { path: `${dir}/nope` }));
      assert.equal(missing.code, -32004);

      const options = { maxDepth: 5, maxEntries: 100, maxDirectories: 100 };
      const walked = await client.request("fs/walk", {
        path: fileUri(dir),
        options: { ...options, followDirectorySymlinks: false },
      });
      assert.deepEqual(walked.result, {
        entries: [
          { path: fileUri(`${dir}/d`), kind: "directory" },
          { path: fileUri(`${dir}/g`), kind: "file" },
          { path: fileUri(`${dir}/d/e`), kind: "directory" },
          { path: fileUri(`${dir}/d/e/f`), kind: "file" },
        ],
        errors: [],
        truncated: false,
      });
      const following = await client.request("fs/walk", {
        path: dir,
        options: { ...options, followDirectorySymlinks: true },
      });
      // The symlinked directory is listed, and read once (through d).
      assert.deepEqual(following.result.entries.map((e: { path: string }) => e.path), [
        `${dir}/d`,
        `${dir}/g`,
        `${dir}/link`,
        `${dir}/d/e`,
        `${dir}/d/e/f`,
      ]);
      const bad = errorOf(await client.request("fs/walk", { path: dir, options: { maxDepth: 1 } }));
      assert.equal(bad.code, -32602);
      assert.match(bad.message, /options\.maxEntries/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs/walk over a big tree stops at each of its bounds, truncated", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_walk_big_" });
  try {
    for (let i = 0; i < 30; i++) {
      await Deno.mkdir(`${dir}/d${i}`);
      for (let j = 0; j < 40; j++) await Deno.writeTextFile(`${dir}/d${i}/f${j}`, "");
    }
    await withClient(async (client) => {
      const walk = (options: Record<string, number>) =>
        client.request("fs/walk", {
          path: dir,
          options: { maxDepth: 5, followDirectorySymlinks: false, ...options },
        });
      const byEntries = (await walk({ maxEntries: 100, maxDirectories: 1000 })).result;
      assert.equal(byEntries.truncated, true);
      assert.equal(byEntries.entries.length, 100);
      const byDirectories = (await walk({ maxEntries: 1e9, maxDirectories: 3 })).result;
      assert.equal(byDirectories.truncated, true);
      assert.equal(byDirectories.entries.length, 30 + 2 * 40);
      const whole = (await walk({ maxEntries: 1e9, maxDirectories: 1e9 })).result;
      assert.equal(whole.truncated, false);
      assert.equal(whole.entries.length, 30 + 30 * 40);
      const shallow = (await walk({ maxEntries: 1e9, maxDirectories: 1e9, maxDepth: 0 })).result;
      assert.equal(shallow.truncated, false);
      assert.equal(shallow.entries.length, 30);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs/open, readBlock, writeBlock, close: blocks, bounds, and clear errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_blocks_" });
  try {
    await Deno.writeTextFile(`${dir}/in`, "0123456789");
    await withClient(async (client) => {
      const call = (method: string, params: unknown) => client.request(method, params);
      assert.deepEqual(
        (await call("fs/open", { handleId: "r", path: fileUri(`${dir}/in`) })).result,
        { handleId: "r" },
      );
      const block = async (offset: number, len: number) => {
        const result = (await call("fs/readBlock", { handleId: "r", offset, len })).result;
        return { text: decoder.decode(Uint8Array.fromBase64(result.chunk)), eof: result.eof };
      };
      assert.deepEqual(await block(0, 4), { text: "0123", eof: false });
      assert.deepEqual(await block(4, 6), { text: "456789", eof: true });
      assert.deepEqual(await block(8, 100), { text: "89", eof: true });
      // Past the end: nothing, and the end.
      assert.deepEqual(await block(50, 4), { text: "", eof: true });
      for (const len of [0, 1024 * 1024 + 1]) {
        const error = errorOf(await call("fs/readBlock", { handleId: "r", offset: 0, len }));
        assert.equal(error.code, -32600);
        assert.match(error.message, /between 1 and 1048576/);
      }
      const duplicate = errorOf(await call("fs/open", { handleId: "r", path: `${dir}/in` }));
      assert.match(duplicate.message, /file handle `r` already exists/);
      const notWritable = errorOf(
        await call("fs/writeBlock", { handleId: "r", offset: 0, chunk: "eA==" }),
      );
      assert.equal(notWritable.code, -32600);
      assert.match(notWritable.message, /opened to read/);

      await call("fs/open", { handleId: "w", path: `${dir}/out`, mode: "replace" });
      await call("fs/writeBlock", {
        handleId: "w",
        offset: 0,
        chunk: encoder.encode("hello").toBase64(),
      });
      await call("fs/writeBlock", {
        handleId: "w",
        offset: 7,
        chunk: encoder.encode("!").toBase64(),
      });
      assert.deepEqual((await call("fs/close", { handleId: "w" })).result, {});
      assert.deepEqual(await Deno.readFile(`${dir}/out`), encoder.encode("hello\0\0!"));
      // A closed (or never opened) handle: -32004, naming it; closing again is fine.
      const closed = errorOf(await call("fs/readBlock", { handleId: "w", offset: 0, len: 1 }));
      assert.equal(closed.code, -32004);
      assert.match(closed.message, /unknown file handle `w`/);
      assert.deepEqual((await call("fs/close", { handleId: "w" })).result, {});
      const directory = errorOf(await call("fs/open", { handleId: "d", path: dir }));
      assert.match(directory.message, /is not a file/);
      const missing = errorOf(await call("fs/open", { handleId: "m", path: `${dir}/nope` }));
      assert.equal(missing.code, -32004);

      // A session's handles are bounded.
      const opened = [];
      for (let i = 0; i < 64; i++) {
        const response = await call("fs/open", { handleId: `h${i}`, path: `${dir}/in` });
        if (response.error) {
          opened.push(response.error.message);
          break;
        }
      }
      assert.match(opened[0] ?? "", /too many open files in this session: the limit is 64/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fs handles close when their session ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_blocks_" });
  const executor = await startExecutor(["--session-ttl-ms", "50", "--log-level", "info"]);
  const file = await Deno.realPath(dir).then((real) => `${real}/in`);
  // The executor's descriptors open on that file.
  const open = () =>
    [...Deno.readDirSync(`/proc/${executor.pid}/fd`)].filter((fd) => {
      try {
        return Deno.readLinkSync(`/proc/${executor.pid}/fd/${fd.name}`) === file;
      } catch {
        return false;
      }
    }).length;
  try {
    await Deno.writeTextFile(file, "data");
    const client = await RawClient.initialized(executor.url);
    for (let i = 0; i < 10; i++) {
      assert.ok((await client.request("fs/open", { handleId: `h${i}`, path: file })).result);
    }
    assert.equal(open(), 10);
    await client.close();
    // The session expires 50 ms after its connection closed; its files close with it.
    await executor.waitForStderr(/session \S+ expired/);
    assert.equal(open(), 0);
  } finally {
    await executor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A loopback HTTP server for the executor to call; `stop()` ends it and its open streams. */
function httpServer() {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const stopped = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/hello": {
        const headers = new Headers({ "content-type": "text/plain" });
        headers.append("x-multi", "1");
        headers.append("x-multi", "2");
        return new Response("hello", { headers });
      }
      case "/echo":
        return new Response(
          JSON.stringify({
            method: request.method,
            header: request.headers.get("x-test"),
            body: await request.text(),
          }),
        );
      case "/redirect":
        return new Response(null, { status: 302, headers: { location: "/hello" } });
      case "/gzip":
        return new Response(
          new Blob(["compressed hello"]).stream().pipeThrough(new CompressionStream("gzip")),
          { headers: { "content-encoding": "gzip", "content-type": "text/plain" } },
        );
      case "/big":
        return new Response(new Uint8Array(600 * 1024).fill(97));
      case "/forever":
        return new Response(
          new ReadableStream<Uint8Array>({
            start(controller) {
              streams.add(controller);
              controller.enqueue(encoder.encode("tick"));
            },
            cancel() {},
          }),
        );
      case "/slow":
        // Answers only when the server stops: later than any timeout a test sets.
        await stopped.promise;
        return new Response("late");
    }
    return new Response("not found", { status: 404 });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    async stop() {
      stopped.resolve();
      for (const controller of streams) {
        try {
          controller.close();
        } catch {
          // Already cancelled.
        }
      }
      await server.shutdown();
    },
  };
}

Deno.test("http/request: buffered and streamed responses, redirects, and clear errors", async () => {
  const http = httpServer();
  try {
    await withClient(async (client) => {
      const request = (params: Record<string, unknown>) =>
        client.request("http/request", {
          method: "GET",
          requestId: crypto.randomUUID(),
          ...params,
        });
      const hello = (await request({ url: `${http.base}/hello` })).result;
      assert.equal(hello.status, 200);
      assert.equal(decoder.decode(Uint8Array.fromBase64(hello.bodyBase64)), "hello");
      assert.ok(
        hello.headers.some((h: { name: string; value: string }) => h.name === "x-multi"),
        JSON.stringify(hello.headers),
      );

      const echo = (await request({
        method: "POST",
        url: `${http.base}/echo`,
        headers: [{ name: "x-test", value: "yes" }],
        bodyBase64: encoder.encode("payload").toBase64(),
      })).result;
      assert.deepEqual(JSON.parse(decoder.decode(Uint8Array.fromBase64(echo.bodyBase64))), {
        method: "POST",
        header: "yes",
        body: "payload",
      });

      // A compressed body arrives decoded, without the headers that described the encoding.
      for (const streamResponse of [false, true]) {
        const requestId = `gzip-${streamResponse}`;
        const gzip = (await request({ url: `${http.base}/gzip`, requestId, streamResponse }))
          .result;
        const names = gzip.headers.map((h: { name: string }) => h.name);
        assert.ok(!names.includes("content-encoding"), JSON.stringify(gzip.headers));
        assert.ok(!names.includes("content-length"), JSON.stringify(gzip.headers));
        let body = Uint8Array.fromBase64(gzip.bodyBase64);
        if (streamResponse) {
          await client.waitNotification((m) =>
            m.method === "http/request/bodyDelta" && m.params.requestId === requestId &&
            m.params.done
          );
          body = encoder.encode(
            client.notifications
              .filter((m) =>
                m.method === "http/request/bodyDelta" && m.params.requestId === requestId
              )
              .map((m) => decoder.decode(Uint8Array.fromBase64(m.params.deltaBase64)))
              .join(""),
          );
        }
        assert.equal(decoder.decode(body), "compressed hello");
      }

      // Redirects are followed only when asked.
      assert.equal((await request({ url: `${http.base}/redirect` })).result.status, 302);
      assert.equal(
        (await request({ url: `${http.base}/redirect`, redirectPolicy: "stop" })).result.status,
        302,
      );
      assert.equal(
        (await request({ url: `${http.base}/redirect`, redirectPolicy: "follow" })).result.status,
        200,
      );

      const streamed = await request({
        url: `${http.base}/big`,
        requestId: "big",
        streamResponse: true,
      });
      assert.equal(streamed.result.bodyBase64, "");
      const last = await client.waitNotification((m) =>
        m.method === "http/request/bodyDelta" && m.params.requestId === "big" && m.params.done
      );
      assert.equal(last.params.error, null);
      const deltas = client.notifications.filter((m) =>
        m.method === "http/request/bodyDelta" && m.params.requestId === "big"
      );
      assert.deepEqual(deltas.map((m) => m.params.seq), deltas.map((_, i) => i + 1));
      const total = deltas.reduce(
        (n, m) => n + Uint8Array.fromBase64(m.params.deltaBase64).length,
        0,
      );
      assert.equal(total, 600 * 1024);

      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const closedPort = (closed.addr as Deno.NetAddr).port;
      closed.close();
      const refused = errorOf(await request({ url: `http://127.0.0.1:${closedPort}/x` }));
      assert.equal(refused.code, -32603);
      // What failed, not just "fetch failed".
      assert.match(refused.message, /^http\/request failed: .*Connection refused/);
      const ftp = errorOf(await request({ url: "ftp://127.0.0.1/x" }));
      assert.equal(ftp.code, -32602);
      assert.match(ftp.message, /only supports http and https URLs, got ftp/);
      const relative = errorOf(await request({ url: "/x" }));
      assert.equal(relative.code, -32602);
      const late = errorOf(await request({ url: `${http.base}/slow`, timeoutMs: 100 }));
      assert.equal(late.code, -32603);
      assert.match(late.message, /timed out/);

      // A stream that never ends: a second request with its id is refused until it is cancelled.
      await request({ url: `${http.base}/forever`, requestId: "forever", streamResponse: true });
      const twice = errorOf(
        await request({ url: `${http.base}/hello`, requestId: "forever", streamResponse: true }),
      );
      assert.equal(twice.code, -32602);
      assert.match(twice.message, /requestId `forever` is already active/);
      assert.deepEqual(
        (await client.request("http/request/cancel", { requestId: "forever" })).result,
        {},
      );
      const end = await client.waitNotification((m) =>
        m.method === "http/request/bodyDelta" && m.params.requestId === "forever" && m.params.done
      );
      assert.equal(end.params.error, "cancelled by the client");
    });
  } finally {
    await http.stop();
  }
});
