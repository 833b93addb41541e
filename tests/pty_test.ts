import assert from "node:assert/strict";
import { type PtyProcess, type PtySpawnOptions, spawnPty } from "../src/process/worker/pty.ts";

/** Every PTY a test started: killed when the test process exits, so a failing test leaves no process. */
const started: PtyProcess[] = [];
globalThis.addEventListener("unload", () => started.forEach((pty) => pty.kill()));

function spawn(options: PtySpawnOptions): PtyProcess {
  const pty = spawnPty(options);
  started.push(pty);
  return pty;
}

const ENV = { PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin" };
const encoder = new TextEncoder();

/** Reads a PTY's whole output in the background and lets a test wait for text in it. */
class Collector {
  text = "";
  bytes = 0;
  chunks = 0;
  ended = false;
  readonly done: Promise<void>;
  #listeners = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>, keepText = true) {
    this.done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this.bytes += chunk.byteLength;
        this.chunks++;
        if (keepText) this.text += decoder.decode(chunk, { stream: true });
        this.#notify();
      }
      this.ended = true;
      this.#notify();
    })();
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Resolves with the first match of `pattern`; rejects if output ends or time runs out first. */
  waitFor(pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.text.match(pattern);
        if (match) finish(() => resolve(match));
        else if (this.ended) finish(() => reject(new Error(`output ended without ${pattern}`)));
      };
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no ${pattern} within ${ms} ms: ${this.text}`))),
        ms,
      );
      this.#listeners.add(check);
      check();
    });
  }
}

/** State, process group and session of a live process, or null when it is gone (or a zombie). */
function procStat(pid: number): { state: string; pgrp: number; session: number } | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const [state, , pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (state === "Z" || state === "X") return null;
  return { state, pgrp: Number(pgrp), session: Number(session) };
}

async function waitGone(pid: number, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (procStat(pid) !== null) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is still alive`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resolves true if `promise` settles within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(
  argv: string[],
  options: { env?: Record<string, string>; arg0?: string; input?: string } = {},
): Promise<{ text: string; status: { code: number; signal: string | null } }> {
  const pty = spawn({ argv, env: options.env ?? ENV, arg0: options.arg0 });
  const output = new Collector(pty.output);
  if (options.input !== undefined) pty.write(encoder.encode(options.input));
  const status = await pty.status;
  await output.done;
  pty.close();
  await pty.released;
  return { text: output.text, status };
}

Deno.test("pty: tty is a /dev/pts device of 24x80, and the child leads its own session", async () => {
  const pty = spawn({ argv: ["sh", "-c", "tty; stty size; read x"], env: ENV });
  const output = new Collector(pty.output);
  await output.waitFor(/^\/dev\/pts\/\d+\r\n24 80\r\n/);
  const stat = procStat(pty.pid);
  assert.equal(stat?.pgrp, pty.pid);
  assert.equal(stat?.session, pty.pid);
  pty.write(encoder.encode("\n"));
  assert.deepEqual(await pty.status, { code: 0, signal: null });
  await output.done;
  pty.close();
});

Deno.test("pty: input written to the terminal reaches the child's stdin", async () => {
  const { text, status } = await run(["sh", "-c", "read line; echo from-stdin:$line"], {
    input: "hello\n",
  });
  assert.match(text, /from-stdin:hello\r\n/);
  assert.deepEqual(status, { code: 0, signal: null });
});

Deno.test("pty: the exit code propagates", async () => {
  assert.deepEqual((await run(["sh", "-c", "exit 7"])).status, { code: 7, signal: null });
});

Deno.test("pty: a program that is not found exits 127 with the reason in the output", async () => {
  const { text, status } = await run(["execbridge-no-such-program"]);
  assert.equal(status.code, 127);
  assert.match(text, /execbridge-no-such-program/);
});

Deno.test("pty: resize reaches the child", async () => {
  const script = 'stty size; while [ "$(stty size)" = "24 80" ]; do sleep 0.02; done; stty size';
  const pty = spawn({ argv: ["sh", "-c", script], env: ENV });
  const output = new Collector(pty.output);
  await output.waitFor(/24 80\r\n/);
  pty.resize(40, 120);
  await output.waitFor(/40 120\r\n/);
  assert.deepEqual(await pty.status, { code: 0, signal: null });
  await output.done;
  pty.close();
});

Deno.test("pty: rows and cols can be given at spawn and are checked", async () => {
  const pty = spawn({ argv: ["stty", "size"], env: ENV, rows: 50, cols: 132 });
  const output = new Collector(pty.output);
  await pty.status;
  await output.done;
  pty.close();
  assert.equal(output.text, "50 132\r\n");
  assert.throws(() => spawnPty({ argv: ["true"], env: ENV, rows: 0 }), RangeError);
  assert.throws(() => spawnPty({ argv: ["true"], env: ENV, cols: 1.5 }), RangeError);
  assert.throws(() => spawnPty({ argv: [], env: ENV }), /argv must not be empty/);
});

Deno.test("pty: kill() ends the child, its output and the process", async () => {
  const pty = spawn({ argv: ["sleep", "30"], env: ENV });
  const output = new Collector(pty.output);
  pty.kill();
  assert.deepEqual(await pty.status, { code: 137, signal: "SIGKILL" });
  await output.done;
  await waitGone(pty.pid);
  pty.kill(); // after exit: a no-op
  pty.close();
  pty.kill(); // after close too
});

Deno.test("pty: kill() also ends a background grandchild", async () => {
  const pty = spawn({ argv: ["sh", "-c", "sleep 30 & echo grandchild:$!; sleep 30"], env: ENV });
  const output = new Collector(pty.output);
  const grandchild = Number((await output.waitFor(/grandchild:(\d+)\r\n/))[1]);
  assert.equal(procStat(grandchild)?.pgrp, pty.pid);
  pty.kill();
  pty.kill();
  assert.deepEqual(await pty.status, { code: 137, signal: "SIGKILL" });
  await output.done;
  await waitGone(pty.pid);
  await waitGone(grandchild);
  pty.close();
});

Deno.test("pty: a grandchild holding the terminal keeps output open until kill()", async () => {
  // `trap "" HUP` makes the grandchild survive the session leader's exit.
  const script = 'trap "" HUP; sleep 30 & echo grandchild:$!';
  const pty = spawn({ argv: ["sh", "-c", script], env: ENV });
  const output = new Collector(pty.output);
  const grandchild = Number((await output.waitFor(/grandchild:(\d+)\r\n/))[1]);
  assert.deepEqual(await pty.status, { code: 0, signal: null });
  assert.equal(await settlesWithin(output.done, 300), false, "output ended too early");
  assert.notEqual(procStat(grandchild), null);
  pty.kill();
  await output.done;
  await waitGone(grandchild);
  pty.close();
});

Deno.test("pty: 5 MB of output arrive completely", async () => {
  const size = 5_000_000;
  const start = performance.now();
  const pty = spawn({
    argv: ["sh", "-c", `head -c ${size} /dev/zero | tr '\\0' a`],
    env: ENV,
  });
  const output = new Collector(pty.output, false);
  assert.deepEqual(await pty.status, { code: 0, signal: null });
  await output.done;
  pty.close();
  const seconds = (performance.now() - start) / 1000;
  assert.equal(output.bytes, size);
  console.log(
    `  ${output.bytes} bytes in ${output.chunks} chunks, ${(size / 1e6 / seconds).toFixed(1)} MB/s`,
  );
});

Deno.test("pty: large input is queued until the program reads it", async () => {
  const size = 1_000_000;
  const pty = spawn({
    argv: ["sh", "-c", `stty raw -echo; echo ready; head -c ${size} | wc -c`],
    env: ENV,
  });
  const output = new Collector(pty.output);
  await output.waitFor(/ready/);
  pty.write(new Uint8Array(size / 2).fill(120));
  pty.write(new Uint8Array(size / 2).fill(121));
  await output.waitFor(new RegExp(`\\b${size}\\b`));
  assert.deepEqual(await pty.status, { code: 0, signal: null });
  await output.done;
  pty.close();
});

Deno.test("pty: cancelling output keeps draining so the child does not block", async () => {
  const pty = spawn({
    argv: ["sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' a; exit 3"],
    env: ENV,
  });
  const reader = pty.output.getReader();
  assert.equal((await reader.read()).done, false);
  await reader.cancel();
  assert.deepEqual(await pty.status, { code: 3, signal: null });
  pty.close();
  await pty.released;
});

Deno.test("pty: close() before exit releases everything; write() then throws", async () => {
  const pty = spawn({ argv: ["sleep", "30"], env: ENV });
  const output = new Collector(pty.output);
  pty.write(encoder.encode("ignored\n"));
  pty.close();
  pty.close();
  await output.done;
  await pty.released;
  assert.throws(() => pty.write(encoder.encode("x")), /closed/);
  pty.resize(10, 10); // no-op after close
  pty.kill();
  // Closing the master hangs the terminal up: the child may already be gone by SIGHUP (or,
  // if it had not opened the terminal yet, sh exits 2), so only check that it is gone.
  await pty.status;
  await waitGone(pty.pid);
});

Deno.test("pty: write() throws after the PTY was released at exit", async () => {
  const { status } = await run(["true"]);
  assert.equal(status.code, 0);
  const pty = spawn({ argv: ["true"], env: ENV });
  const output = new Collector(pty.output);
  await pty.status;
  await output.done;
  assert.throws(() => pty.write(encoder.encode("x")), /closed/);
  pty.close();
});

Deno.test("pty: the child gets exactly the given environment", async () => {
  const env = { ...ENV, A: "1" };
  assert.equal((await run(["env"], { env })).text, `A=1\r\nPATH=${ENV.PATH}\r\n`);
  const withPwd = { ...env, PWD: "/somewhere", PERL_BADLANG: "kept" };
  const expected = `A=1\r\nPATH=${ENV.PATH}\r\nPERL_BADLANG=kept\r\nPWD=/somewhere\r\n`;
  assert.equal((await run(["env"], { env: withPwd })).text, expected);
  assert.equal((await run(["env"], { env: withPwd, arg0: "other" })).text, expected);
  assert.equal((await run(["env"], { env, arg0: "other" })).text, `A=1\r\nPATH=${ENV.PATH}\r\n`);
});

Deno.test("pty: arg0 overrides argv[0]", async () => {
  // The other arguments pass through untouched (a script's $0 is its first argument).
  const argv = ["sh", "-c", 'echo "0=$0 args=$*"', "-dash", "b c"];
  const { text, status } = await run(argv, { arg0: "custom name" });
  assert.equal(text, "0=-dash args=b c\r\n");
  assert.equal(status.code, 0);
  // The program's own argv[0], as ps shows it.
  const pty = spawn({ argv: ["sleep", "30"], env: ENV, arg0: "my-sleep" });
  const output = new Collector(pty.output);
  const deadline = Date.now() + 5_000;
  let cmdline = "";
  while (!cmdline.startsWith("my-sleep\0") && Date.now() < deadline) {
    cmdline = await Deno.readTextFile(`/proc/${pty.pid}/cmdline`);
    if (!cmdline.startsWith("my-sleep\0")) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(cmdline, "my-sleep\x0030\0");
  pty.kill();
  await pty.status;
  await output.done;
  pty.close();
  const notFound = await run(["execbridge-no-such-program"], { arg0: "x" });
  assert.equal(notFound.status.code, 127);
  assert.match(notFound.text, /failed to execute execbridge-no-such-program/);
});

Deno.test("pty: a missing cwd throws a clear error", () => {
  assert.throws(
    () => spawnPty({ argv: ["true"], env: ENV, cwd: "/execbridge/no/such/dir" }),
    /working directory \/execbridge\/no\/such\/dir does not exist/,
  );
});

Deno.test("pty: cwd is used", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pty = spawn({ argv: ["pwd"], env: ENV, cwd: dir });
    const output = new Collector(pty.output);
    await pty.status;
    await output.done;
    pty.close();
    assert.equal(output.text, `${await Deno.realPath(dir)}\r\n`);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("pty: several PTYs at once", async () => {
  const runs = await Promise.all(
    [1, 2, 3, 4].map((i) => run(["sh", "-c", `read x; echo got:$x:${i}`], { input: `v${i}\n` })),
  );
  runs.forEach(({ text }, i) => assert.match(text, new RegExp(`got:v${i + 1}:${i + 1}`)));
});

Deno.test("pty: spawning inside a Web Worker works", async () => {
  const worker = new Worker(new URL("./fixtures/pty_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const result = await new Promise<
      { pid: number; text: string; status: Awaited<PtyProcess["status"]>; error?: string }
    >((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(event.message));
      };
      worker.postMessage({ argv: ["sh", "-c", "read x; echo got:$x; tty; stty size"], env: ENV });
    });
    assert.equal(result.error, undefined);
    assert.match(result.text, /got:from-parent\r\n\/dev\/pts\/\d+\r\n30 100\r\n/);
    assert.deepEqual(result.status, { code: 0, signal: null });
    assert.ok(result.pid > 0);
  } finally {
    worker.terminate();
  }
});
