/** Unit tests of the pieces behind a process: env policy, the output log, argument parsing. */

import assert from "node:assert/strict";
import { buildChildEnv, matchesGlob } from "../src/process/host/env_policy.ts";
import { OutputLog } from "../src/process/output_log.ts";
import { WorkerPool, type WorkerPoolOptions } from "../src/process/host/worker_pool.ts";
import { type EventSink, ProcessHost } from "../src/process/host/process_host.ts";
import { CARRIER_BYTES } from "../src/process/worker_protocol.ts";
import type { ProcessEvent } from "../src/protocol/types.ts";
import { decodeOutputFrame } from "../src/protocol/binary_output.ts";
import { parseListenUrl } from "../src/server/serve.ts";
import { resolveProgram } from "../src/process/spawn.ts";
import { denoEval } from "./support/deno_eval.ts";

/** A pool for tests: nothing warm, 16 idle workers at most, kept until closed, unless told. */
function testPool(options: Partial<WorkerPoolOptions>): WorkerPool {
  return new WorkerPool({ warmWorkers: 0, maxIdleWorkers: 16, idleWorkerTtlMs: null, ...options });
}

const source = {
  PATH: "/bin",
  HOME: "/root",
  API_KEY: "k",
  GITHUB_TOKEN: "t",
  MY_SECRET_THING: "s",
  OTHER: "o",
};

Deno.test("env: without a policy the child gets exactly env", () => {
  assert.deepEqual(buildChildEnv({ A: "1" }, { source }), { A: "1" });
  assert.deepEqual(buildChildEnv(undefined, { source }), {});
});

Deno.test("env: policy core, default excludes, exclude, set, includeOnly, then overlay", () => {
  const base = { ignoreDefaultExcludes: false, exclude: [], set: {}, includeOnly: [] };
  assert.deepEqual(buildChildEnv({}, { source, policy: { ...base, inherit: "core" } }), {
    PATH: "/bin",
    HOME: "/root",
  });
  assert.deepEqual(
    buildChildEnv({ OTHER: "overlay" }, { source, policy: { ...base, inherit: "all" } }),
    { PATH: "/bin", HOME: "/root", OTHER: "overlay" },
  );
  assert.deepEqual(
    buildChildEnv({}, {
      source,
      policy: { ...base, inherit: "all", ignoreDefaultExcludes: true, exclude: ["*token"] },
    }),
    { PATH: "/bin", HOME: "/root", API_KEY: "k", MY_SECRET_THING: "s", OTHER: "o" },
  );
  assert.deepEqual(
    buildChildEnv({ X: "1" }, {
      source,
      policy: { ...base, inherit: "none", set: { S: "2", T: "3" }, includeOnly: ["s"] },
    }),
    { S: "2", X: "1" },
  );
  assert.ok(matchesGlob("path", "PA?H"));
  assert.ok(!matchesGlob("PATHS", "PATH"));
});

Deno.test("output log: retention evicts oldest first; replay keeps exit and close", () => {
  const log = new OutputLog({ retainedBytes: 3, replayEvents: 256 });
  log.appendOutput("stdout", new TextEncoder().encode("hello"));
  log.recordExit(0, null);
  log.recordClose();
  assert.deepEqual(log.history(), [
    { type: "exited", seq: 2, exitCode: 0, signal: null },
    { type: "closed", seq: 3 },
  ]);
  const read = log.readBytes(0, null);
  assert.equal(read.chunks.length, 0);
  assert.equal(read.nextSeq, 4);
});

Deno.test("output log: onEvict gets each evicted chunk's bytes, oldest first", () => {
  const log = new OutputLog({ retainedBytes: 4, replayEvents: 256 });
  const evicted: string[] = [];
  log.onEvict = (data) => evicted.push(new TextDecoder().decode(data));
  for (const text of ["ab", "cd", "ef", "g"]) {
    log.appendOutput("stdout", new TextEncoder().encode(text));
  }
  assert.deepEqual(evicted, ["ab", "cd"]);
  log.appendOutput("stdout", new TextEncoder().encode("hij"));
  assert.deepEqual(evicted, ["ab", "cd", "ef"]);
  assert.deepEqual(log.readBytes(0, null).chunks.map((c) => c.seq), [4, 5]);
});

Deno.test("worker pool: a start that takes a ready worker does not create its replacement inline", async () => {
  // `new Worker()` blocks the calling thread ~10 ms: the replacement comes later.
  const pool = testPool({ warmWorkers: 1 });
  try {
    await pool.ready();
    assert.equal(pool.size, 1);
    const first = await pool.acquire();
    assert.equal(pool.size, 1, "the replacement was created inside acquire()");
    // With no ready worker, one is started at once for the waiting start.
    const pending = pool.acquire();
    assert.equal(pool.size, 2);
    const second = await pending;
    assert.notEqual(first, second);
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: the refill waits for the start that took a worker, then comes", async () => {
  // `new Worker()` blocks this thread 15-20 ms: it must not hold back a start's answer.
  const pool = testPool({ warmWorkers: 1 });
  try {
    await pool.ready();
    await pool.acquire();
    let spawned!: () => void;
    pool.holdRefill(new Promise<void>((resolve) => spawned = resolve));
    // Nothing to await while held: the point is that nothing happens. Sample past the delay.
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      sizes.push(pool.size);
    }
    assert.deepEqual(sizes, Array(10).fill(1), "the pool refilled while a start was spawning");
    spawned();
    await until(() => pool.size === 2 && pool.idle === 1, "the refill once the start spawned");
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: a worker that will wait in the pool is told to prime, one a start waits for is not", async () => {
  const pool = testPool({
    warmWorkers: 1,
    workerUrl: new URL("./fixtures/init_echo_worker.ts", import.meta.url),
  });
  const primeOf = (worker: Worker): Promise<boolean> =>
    new Promise((resolve) => {
      worker.onmessage = (event) => resolve(event.data.prime);
      worker.postMessage({ type: "ask" });
    });
  try {
    await pool.ready();
    const pooled = await pool.acquire(); // made by ready(), idle until taken
    const waitedFor = await pool.acquire(); // none idle: made for this start
    assert.equal(await primeOf(pooled), true);
    assert.equal(await primeOf(waitedFor), false);
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: workers are made one per task, so other work runs between two", async () => {
  // `new Worker()` blocks the thread 15-20 ms: two in a row would stall every connection twice as long.
  const pool = testPool({ warmWorkers: 0 });
  try {
    const starts = [pool.acquire(), pool.acquire(), pool.acquire()];
    assert.equal(pool.size, 1, "more than one worker was created in one task");
    let ranBetween = false;
    setTimeout(() => ranBetween = true, 0);
    const workers = await Promise.all(starts);
    assert.equal(new Set(workers).size, 3);
    assert.ok(ranBetween);
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: after starts had to wait, the pool grows back to their peak; an idle trim forgets it", async () => {
  const pool = testPool({ warmWorkers: 0, idleWorkerTtlMs: 300, retireGapMs: 1 });
  try {
    const first = await pool.acquire();
    // Three in use at once (one running, two waiting), but a release serves one of the waiting
    // starts: only one more worker is made for them.
    const waiting = [pool.acquire(), pool.acquire()];
    pool.release(first);
    const [a, b] = await Promise.all(waiting);
    pool.release(a);
    pool.release(b);
    // In the background, the pool also makes the third worker the next burst of three will need.
    await until(() => pool.size === 3, "the pool to grow to its peak of 3");
    // Then nothing more: 3 is the peak. After the idle timeout every worker is let go
    // (warm is 0), and the forgotten peak does not bring them back.
    await until(() => pool.size === 0, "the idle trim");
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      sizes.push(pool.size);
    }
    assert.deepEqual(sizes, Array(10).fill(0));
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: idle workers let go are terminated one at a time, and a start can take one back", async () => {
  // Terminating many workers at once stalls the whole process for seconds (malloc_trim in each).
  const pool = testPool({ warmWorkers: 0, idleWorkerTtlMs: 50, retireGapMs: 60_000 });
  try {
    const workers = await Promise.all(Array.from({ length: 4 }, () => pool.acquire()));
    for (const worker of workers) pool.release(worker);
    await until(() => pool.size < 4, "the idle trim");
    assert.equal(pool.size, 3, "more than one idle worker was terminated at once");
    // A start while the other three wait for their turn reuses one of them.
    const again = await pool.acquire();
    assert.equal(pool.size, 3, "a new worker was made although a retiring one was there");
    assert.ok(workers.includes(again));
  } finally {
    pool.close();
  }
  assert.equal(pool.size, 0);
});

Deno.test("worker pool: workers let go one after another are terminated a gap apart too", async () => {
  // A burst of failed starts discards its workers one by one, each a moment after the last:
  // terminated as they come, 150 of them froze the executor's event loop for 2.3 s.
  const pool = testPool({ warmWorkers: 0, maxIdleWorkers: 1, retireGapMs: 60_000 });
  try {
    const workers = await Promise.all(Array.from({ length: 3 }, () => pool.acquire()));
    // The first is kept idle; the second is terminated at once, the third only after the gap.
    for (const worker of workers) pool.release(worker);
    assert.equal(pool.size, 2);
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: closing with many workers terminates them a gap apart and resolves after the last", async () => {
  const pool = testPool({ warmWorkers: 0, maxIdleWorkers: 64, retireGapMs: 5 });
  const workers = await Promise.all(Array.from({ length: 40 }, () => pool.acquire()));
  for (const worker of workers) pool.release(worker);
  const t0 = performance.now();
  const closing = pool.close();
  assert.equal(pool.size, 0);
  await closing;
  // 40 is more than CLOSE_AT_ONCE: each after the one before, 5 ms apart (a timer never fires early).
  assert.ok(performance.now() - t0 >= 39 * 5, "the workers were terminated at once");
});

/** Resolves once `condition()` holds; fails after 10 s, naming `what`. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("carriers: big output goes out in buffers that come back; what receivers keep stays intact", async () => {
  const data = new Uint8Array(6 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const file = await Deno.makeTempFile();
  await Deno.writeFile(file, data);
  const pool = testPool({ warmWorkers: 1 });
  try {
    const frames: Uint8Array[] = [];
    const framed: Uint8Array[] = [];
    const kept: Uint8Array[] = [];
    let closed: () => void = () => {};
    const done = new Promise<void>((resolve) => closed = resolve);
    const sink: EventSink = {
      push(event: ProcessEvent) {
        if (event.type === "output") kept.push(event.chunk);
        if (event.type === "closed") closed();
      },
      fail: (message) => assert.fail(message),
    };
    const host = await ProcessHost.start({
      processId: "carriers",
      argv: ["cat", file],
      cwd: Deno.cwd(),
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      tty: false,
      pipeStdin: false,
      arg0: null,
      sandbox: null,
      wire: "binary",
      retainedBytes: 1024 * 1024,
      replayEvents: 256,
      events: null,
    }, {
      pool,
      onWire(message) {
        if (typeof message === "string") return;
        // What the connection does: use the frame before returning (it sends a copy).
        framed.push(decodeOutputFrame(message)!.chunk.slice());
        if (message.byteLength >= 64 * 1024) frames.push(message);
      },
    }, sink);
    await done;
    await host.whenClosed();
    assert.ok(frames.length >= 2, `expected big frames, got ${frames.length}`);
    // Sent back to the worker once onWire returned: detached here.
    assert.ok(
      frames.every((frame) => frame.buffer.byteLength === 0),
      "a carrier was not sent back",
    );
    // Events are copies the receiver keeps: still intact after every carrier was reused.
    assert.ok(kept.every((chunk) => chunk.buffer.byteLength !== CARRIER_BYTES));
    assert.deepEqual(concat(kept), data);
    assert.deepEqual(concat(framed), data);
  } finally {
    pool.close();
    await Deno.remove(file);
  }
});

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** A spec for {@link ProcessHost.start} running `argv` with PATH only. */
function specOf(processId: string, argv: string[]) {
  return {
    processId,
    argv,
    cwd: Deno.cwd(),
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    tty: false,
    pipeStdin: false,
    arg0: null,
    sandbox: null,
    wire: "none" as const,
    retainedBytes: 1024 * 1024,
    replayEvents: 256,
    events: null,
  };
}

Deno.test("worker pool: a worker discarded right after its process still delivered every event", async () => {
  // maxIdle 0: every worker is terminated as soon as its host gives it back. The last events of a
  // process travel on the events port, whose messages are lost when their worker is terminated
  // too soon after posting them: the host must give the worker back only once they arrived.
  const pool = testPool({ warmWorkers: 0, maxIdleWorkers: 0 });
  try {
    for (let i = 0; i < 40; i++) {
      const seen: string[] = [];
      let closed: () => void = () => {};
      const done = new Promise<void>((resolve) => closed = resolve);
      const host = await ProcessHost.start(
        specOf(`d${i}`, ["sh", "-c", "echo out; echo err >&2"]),
        {
          pool,
        },
        {
          push(event: ProcessEvent) {
            seen.push(event.type);
            if (event.type === "closed") closed();
          },
          fail: (message) => assert.fail(message),
        },
      );
      await host.whenClosed();
      // whenClosed() comes after every event, so nothing is left to wait for.
      assert.deepEqual(seen.slice(-2), ["exited", "closed"]);
      assert.equal(seen.filter((type) => type === "output").length, 2);
      await done;
    }
  } finally {
    pool.close();
  }
});

Deno.test("process host: reads and terminates in flight when the process closes get answers from its log", async () => {
  const pool = testPool({ warmWorkers: 1 });
  try {
    for (let i = 0; i < 20; i++) {
      const host = await ProcessHost.start(specOf(`r${i}`, ["sh", "-c", "echo hi; sleep 0.01"]), {
        pool,
      });
      const first = await host.readBytes({ afterSeq: 0, maxBytes: null, waitMs: 5000 });
      assert.equal(new TextDecoder().decode(first.chunks[0].chunk), "hi\n");
      // Some of these reach the worker only after it finished the process: the main thread
      // answers those itself, from the archived log. None may hang.
      const [running, news, json] = await Promise.all([
        host.terminate("SIGTERM"),
        host.readBytes({ afterSeq: 1, maxBytes: null, waitMs: 5000 }),
        host.readJson({ afterSeq: 0, maxBytes: null, waitMs: 5000 }),
      ]);
      assert.equal(typeof running, "boolean");
      assert.ok(news.exited, "a read after the output waits for the exit");
      assert.deepEqual(JSON.parse(json).chunks.map((c: { seq: number }) => c.seq), [1]);
      await host.whenClosed();
      // Once closed, everything comes from the archive.
      const after = await host.readBytes({ afterSeq: 0, maxBytes: null, waitMs: 5000 });
      assert.equal(after.closed, true);
      assert.equal(await host.terminate(), false);
    }
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: an idle timeout shorter than the refill delay lets the pool go quiet", async () => {
  // The refill after a start must not resurrect workers the idle timeout just let go
  // (that cycle used to start and stop workers for as long as the program ran).
  const pool = testPool({ warmWorkers: 2, idleWorkerTtlMs: 1, trimWarm: true });
  try {
    await pool.ready();
    // Nothing to await here: the point is that nothing happens. Sample for a while.
    const sizes: number[] = [];
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 10; i++) {
      sizes.push(pool.size);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(sizes, Array(10).fill(0));
  } finally {
    pool.close();
  }
});

Deno.test("worker pool: when workers fail to start, every waiting start fails (none hangs)", async () => {
  const broken = URL.createObjectURL(
    new Blob(['throw new Error("boom");'], { type: "application/javascript" }),
  );
  const pool = testPool({ warmWorkers: 0, workerUrl: new URL(broken) });
  try {
    // More waiting starts than workers are started at once.
    const starts = Array.from({ length: 6 }, () => pool.acquire());
    for (const start of starts) await assert.rejects(start, /failed to start: .*boom/);
    assert.equal(pool.size, 0);
  } finally {
    pool.close();
    URL.revokeObjectURL(broken);
  }
});

Deno.test("output log: read budget returns at least one chunk and stops at the budget", () => {
  const log = new OutputLog({ retainedBytes: 1024, replayEvents: 256 });
  for (const s of ["aaaa", "bbbb", "cccc"]) log.appendOutput("stdout", new TextEncoder().encode(s));
  assert.equal(log.readBytes(0, 1).chunks.length, 1);
  assert.equal(log.readBytes(0, 8).chunks.length, 2);
  assert.equal(log.readBytes(0, 9).chunks.length, 2);
  assert.equal(log.readBytes(1, null).chunks[0].seq, 2);
  assert.equal(log.readBytes(3, null).nextSeq, 4);
  assert.equal(log.hasNews(3), false);
  log.recordExit(1, null);
  assert.equal(log.hasNews(3), true);
  assert.equal(log.hasNews(4), false);
});

Deno.test("listen URLs: defaults, IPv6, localhost, and clear errors", () => {
  assert.deepEqual(parseListenUrl("ws://127.0.0.1:0"), {
    kind: "ws",
    hostname: "127.0.0.1",
    port: 0,
  });
  assert.deepEqual(parseListenUrl("ws://[::1]:9"), { kind: "ws", hostname: "::1", port: 9 });
  assert.deepEqual(parseListenUrl("ws://localhost:9"), {
    kind: "ws",
    hostname: "127.0.0.1",
    port: 9,
  });
  assert.deepEqual(parseListenUrl("stdio"), { kind: "stdio" });
  assert.throws(() => parseListenUrl("http://127.0.0.1:1"), /unsupported --listen URL/);
  assert.throws(() => parseListenUrl("ws://example.com:1"), /invalid websocket --listen URL/);
  assert.throws(() => parseListenUrl("ws://127.0.0.1"), /invalid websocket --listen URL/);
});

Deno.test("env: glob matching is linear even for pathological patterns", () => {
  // A backtracking RegExp takes seconds on this; the two-pointer matcher is instant.
  assert.equal(matchesGlob("A".repeat(64), "*".repeat(40) + "!"), false);
  assert.ok(matchesGlob("aXbXc", "*x*x*"));
  assert.ok(matchesGlob("AAAB", "*A*B"));
  assert.ok(!matchesGlob("ABC", "A*D"));
  assert.ok(matchesGlob("", "*"));
  assert.ok(!matchesGlob("", "?"));
});

Deno.test("resolveProgram: finds like execvp, and a program just removed is not found (no stale cache)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `/nonexistent:${dir}:/usr/bin:/bin`;
    assert.equal(resolveProgram("execbridge-tool", { path, cwd: "/" }), null);
    await Deno.writeTextFile(`${dir}/execbridge-tool`, "#!/bin/sh\n", { mode: 0o755 });
    assert.equal(resolveProgram("execbridge-tool", { path, cwd: "/" }), `${dir}/execbridge-tool`);
    assert.equal(
      resolveProgram("./execbridge-tool", { path, cwd: dir }),
      `${dir}/./execbridge-tool`,
    );
    await Deno.chmod(`${dir}/execbridge-tool`, 0o644);
    assert.equal(resolveProgram("execbridge-tool", { path, cwd: "/" }), null, "not executable");
    await Deno.remove(`${dir}/execbridge-tool`);
    assert.equal(resolveProgram("execbridge-tool", { path, cwd: "/" }), null, "removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lean workers: the V8 flag is seen in --v8-flags and in DENO_V8_FLAGS", async () => {
  const module = new URL("../src/process/host/v8_flags.ts", import.meta.url).href;
  const code = `import { leanWorkersFlagSet } from ${JSON.stringify(module)};
    console.log(JSON.stringify(leanWorkersFlagSet()));`;
  const run = async (flags: string[], env: Record<string, string> = {}) =>
    JSON.parse(await denoEval(code, { flags, env, unset: ["DENO_V8_FLAGS"] }));
  if (Deno.build.os !== "linux") return;
  assert.equal(await run([]), false);
  assert.equal(await run(["--v8-flags=--max-lazy,--no-short-builtin-calls"]), true);
  assert.equal(await run(["--v8-flags=--no_short_builtin_calls"]), true);
  assert.equal(await run([], { DENO_V8_FLAGS: "--no-short-builtin-calls" }), true);
});
