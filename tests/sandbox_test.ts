/**
 * Sandbox requests on `process/start`, in local and remote mode: enforced
 * with bubblewrap (a read-only policy really blocks writes, network off
 * really has no network, writable roots are writable, protected metadata is
 * not) or refused with -32602 saying what and why (globs, a managed network
 * proxy, no bwrap). Without a sandbox, nothing changes.
 */

import assert from "node:assert/strict";
import { type ExecBackend, INVALID_PARAMS, RpcError } from "../mod.ts";
import { type BackendMode, ENV, modes } from "./support/backends.ts";
import { startExecutor } from "./support/executor_process.ts";
import { RawClient } from "./support/raw_client.ts";
import { denoEval } from "./support/deno_eval.ts";
import { likelySandboxDenied } from "../src/sandbox/denial.ts";

const HAVE_BWRAP = (() => {
  try {
    return new Deno.Command("bwrap", {
      args: ["--ro-bind", "/", "/", "--unshare-pid", "--dev", "/dev", "--proc", "/proc", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

const root = { path: { type: "special", value: { kind: "root" } }, access: "read" };
const projectWrite = {
  path: { type: "special", value: { kind: "project_roots" } },
  access: "write",
};

function managed(entries: unknown[], network: "restricted" | "enabled" = "restricted") {
  return {
    permissions: { type: "managed", file_system: { type: "restricted", entries }, network },
  };
}

/** Runs `script` with `sh -c` in `cwd` under `sandbox`; its output and exit code. */
async function run(
  backend: ExecBackend,
  script: string,
  options: { cwd: string; sandbox?: unknown; enforceManagedNetwork?: boolean },
): Promise<{ output: string; exitCode: number; sandboxDenied?: boolean }> {
  const proc = await backend.start({
    processId: `s-${crypto.randomUUID()}`,
    argv: ["sh", "-c", script],
    env: ENV,
    ...options,
  });
  const decoder = new TextDecoder();
  let output = "";
  proc.listen((event) => {
    if (event.type === "output") output += decoder.decode(event.chunk);
  });
  const { exitCode, sandboxDenied } = await proc.wait();
  return { output, exitCode, ...(sandboxDenied ? { sandboxDenied } : {}) };
}

function each(
  name: string,
  fn: (backend: ExecBackend, dir: string, mode: BackendMode) => Promise<void>,
) {
  for (const mode of modes) {
    Deno.test({ name: `${mode.name}: ${name}`, ignore: !HAVE_BWRAP }, async () => {
      const opened = await mode.open();
      const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_sandbox_" }));
      try {
        await fn(opened.backend, dir, mode);
      } finally {
        await Deno.remove(dir, { recursive: true });
        await opened.close();
      }
    });
  }
}

each("a read-only policy blocks every write, and reads still work", async (backend, dir) => {
  await Deno.writeTextFile(`${dir}/in`, "readable");
  const result = await run(
    backend,
    `cat in; (echo x > out) 2>/dev/null && echo WROTE; ` +
      `(echo y > /tmp/sandbox-escape-$$) 2>/dev/null && echo WROTE_TMP; echo done`,
    { cwd: dir, sandbox: managed([root]) },
  );
  assert.equal(result.output, "readabledone\n");
  assert.equal(result.exitCode, 0);
  assert.equal(await Deno.stat(`${dir}/out`).catch(() => null), null);
});

Deno.test("likelySandboxDenied: a failed exit with a denial phrase (even split across chunks) or SIGSYS", () => {
  const bytes = (...parts: string[]) => parts.map((part) => new TextEncoder().encode(part));
  assert.equal(likelySandboxDenied(1, bytes("touch: x: Read-only file system\n")), true);
  assert.equal(
    likelySandboxDenied(1, bytes("sh: 1: cannot create x: Permi", "ssion denied")),
    true,
  );
  assert.equal(likelySandboxDenied(1, bytes("bwrap: Creating new namespace failed")), false);
  assert.equal(likelySandboxDenied(0, bytes("Operation not permitted")), false);
  assert.equal(likelySandboxDenied(159, []), true);
  assert.equal(likelySandboxDenied(1, []), false);
});

each(
  "a failure that looks like the sandbox's doing is reported as sandboxDenied, others are not",
  async (backend, dir) => {
    const readOnly = { cwd: dir, sandbox: managed([root]) };
    const denied = await run(backend, "echo x > out", readOnly);
    assert.equal(denied.sandboxDenied, true);
    assert.match(denied.output, /Read-only file system/);
    assert.notEqual(denied.exitCode, 0);
    // A plain failure, a success that prints a denial, and a denial outside any sandbox.
    assert.deepEqual(await run(backend, "exit 3", readOnly), { output: "", exitCode: 3 });
    assert.deepEqual(await run(backend, "echo permission denied", readOnly), {
      output: "permission denied\n",
      exitCode: 0,
    });
    assert.deepEqual(await run(backend, "echo Operation not permitted; exit 1", { cwd: dir }), {
      output: "Operation not permitted\n",
      exitCode: 1,
    });
  },
);

each(
  "network off has no network: only a loopback device, and no connection out",
  async (backend, dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const accepted = listener.accept().then((conn) => conn.close(), () => {});
    try {
      const script =
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null && echo CONNECTED; ` +
        `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo done`;
      const closed = await run(backend, script, {
        cwd: dir,
        sandbox: managed([root], "restricted"),
      });
      assert.equal(closed.output, "lo\ndone\n");
      const enabled = await run(
        backend,
        `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' && echo CONNECTED`,
        {
          cwd: dir,
          sandbox: managed([root], "enabled"),
        },
      );
      assert.equal(enabled.output, "CONNECTED\n");
    } finally {
      listener.close();
      await accepted;
    }
  },
);

each(
  "workspace-write: the project root is writable, its .git is not, the rest is read-only",
  async (backend, dir) => {
    await Deno.mkdir(`${dir}/.git`);
    const script =
      `echo ok > made && echo WROTE; (echo x > .git/config) 2>/dev/null && echo GIT; ` +
      `(echo x > /etc/sandbox-escape) 2>/dev/null && echo ETC; cat made`;
    const result = await run(backend, script, { cwd: dir, sandbox: managed([root, projectWrite]) });
    assert.equal(result.output, "WROTE\nok\n");
    assert.equal(await Deno.readTextFile(`${dir}/made`), "ok\n");
    assert.equal(await Deno.stat(`${dir}/.git/config`).catch(() => null), null);
  },
);

each("a denied path is hidden inside the sandbox", async (backend, dir) => {
  await Deno.mkdir(`${dir}/secret`);
  await Deno.writeTextFile(`${dir}/secret/key`, "s3cret");
  const denied = { path: { type: "path", path: `file://${dir}/secret` }, access: "deny" };
  const result = await run(backend, "cat secret/key 2>/dev/null || echo HIDDEN", {
    cwd: dir,
    sandbox: managed([root, denied]),
  });
  assert.equal(result.output, "HIDDEN\n");
});

each("what cannot be enforced is refused with -32602, and nothing starts", async (backend, dir) => {
  const refused = async (
    options: { sandbox?: unknown; enforceManagedNetwork?: boolean },
    message: RegExp,
  ) => {
    const error = await run(backend, "touch ran", { cwd: dir, ...options }).then(
      () => null,
      (caught) => caught,
    );
    assert.ok(error instanceof RpcError, `expected a refusal, got ${error}`);
    assert.equal(error.code, INVALID_PARAMS);
    assert.match(error.message, /^invalid params for process\/start: sandbox: /);
    assert.match(error.message, message);
  };
  const glob = { path: { type: "glob_pattern", pattern: "**/*.env" }, access: "deny" };
  await refused({ sandbox: managed([root, glob]) }, /glob `\*\*\/\*\.env` cannot be enforced/);
  await refused({ sandbox: { permissions: { type: "managed" } } }, /does not understand/);
  await refused({ sandbox: managed([root]), enforceManagedNetwork: true }, /managed network proxy/);
  assert.equal(await Deno.stat(`${dir}/ran`).catch(() => null), null);
  // Disabled, external with network on, and absent: run as without a sandbox.
  for (const sandbox of [{ permissions: { type: "disabled" } }, undefined, null]) {
    assert.equal(
      (await run(backend, "echo free > /dev/null; echo ran", { cwd: dir, sandbox })).output,
      "ran\n",
    );
  }
});

Deno.test({
  name: "remote: without bwrap, a sandbox is refused and environment/info says so",
  ignore: !HAVE_BWRAP,
}, async () => {
  const executor = await startExecutor([], {
    env: { ...Deno.env.toObject(), EXECBRIDGE_BWRAP: "/nonexistent/bwrap" },
  });
  const client = await RawClient.initialized(executor.url);
  try {
    const info = await client.request("environment/info", {});
    assert.equal(info.result.capabilities.sandboxBubblewrap, false);
    const response = await client.request("process/start", {
      processId: "p",
      argv: ["true"],
      cwd: "/",
      env: ENV,
      tty: false,
      sandbox: managed([root]),
    });
    assert.equal(response.error.code, -32602);
    assert.match(response.error.message, /bubblewrap \(bwrap\) is not available/);
  } finally {
    await client.close();
    await executor.stop();
  }
});

Deno.test({ name: "local: without bwrap, a sandbox is refused", ignore: !HAVE_BWRAP }, async () => {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const out = await denoEval(
    `import { LocalExecBackend } from ${JSON.stringify(mod)};
     const backend = new LocalExecBackend();
     const sandbox = { permissions: { type: "managed", network: "restricted",
       file_system: { type: "restricted", entries: [] } } };
     try { await backend.start({ processId: "p", argv: ["true"], sandbox }); console.log("started"); }
     catch (e) { console.log(e.code + " " + e.message); }
     await backend.close();`,
    { env: { EXECBRIDGE_BWRAP: "/nonexistent/bwrap" } },
  );
  assert.match(out, /^-32602 .*bubblewrap \(bwrap\) is not available/);
});

each(
  "an interrupt reaches the sandboxed command, not just bwrap: its trap runs",
  async (backend, dir) => {
    const proc = await backend.start({
      processId: "trap",
      argv: [
        "sh",
        "-c",
        "trap 'echo trapped; exit 3' INT; echo ready; while :; do sleep 0.05; done",
      ],
      env: ENV,
      cwd: dir,
      sandbox: managed([root]),
    });
    const decoder = new TextDecoder();
    let output = "";
    const ready = Promise.withResolvers<void>();
    proc.listen((event) => {
      if (event.type !== "output") return;
      output += decoder.decode(event.chunk);
      if (output.includes("ready")) ready.resolve();
    });
    await ready.promise;
    await proc.terminate({ signal: "SIGINT" });
    assert.deepEqual(await proc.wait(), { exitCode: 3, signal: null });
    assert.equal(output, "ready\ntrapped\n");
  },
);

Deno.test({
  name: "remote: process/start says how the process is confined; exit and read carry sandboxDenied",
  ignore: !HAVE_BWRAP,
}, async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_sandbox_" }));
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  try {
    const start = (processId: string, sandbox: unknown) =>
      client.request("process/start", {
        processId,
        argv: ["sh", "-c", "echo x > out"],
        cwd: `file://${dir}`,
        env: ENV,
        tty: false,
        sandbox,
      });
    const exitOf = (processId: string) =>
      client.waitNotification((m) =>
        m.method === "process/exited" && m.params.processId === processId
      );
    const deniedExit = exitOf("denied");
    assert.deepEqual((await start("denied", managed([root]))).result, {
      processId: "denied",
      sandboxType: "linuxSeccomp",
    });
    assert.equal((await deniedExit).params.sandboxDenied, true);
    const read = await client.request("process/read", { processId: "denied" });
    assert.equal(read.result.sandboxDenied, true);
    const freeExit = exitOf("free");
    assert.deepEqual((await start("free", null)).result, {
      processId: "free",
      sandboxType: "none",
    });
    assert.equal((await freeExit).params.sandboxDenied, false);
    assert.equal(await Deno.readTextFile(`${dir}/out`), "x\n");
  } finally {
    await client.close();
    await executor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("remote: sandboxed fs requests: writes only under writable roots, not through a link out, not into .git", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_fs_sandbox_" }));
  const outside = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_outside_" }));
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  try {
    await Deno.mkdir(`${dir}/.git`);
    await Deno.symlink(outside, `${dir}/escape`);
    await Deno.writeTextFile(`${outside}/secret`, "s");
    const workspace = { ...managed([root, projectWrite]), cwd: `file://${dir}` };
    const write = (path: string, sandbox: unknown) =>
      client.request("fs/writeFile", { path, dataBase64: "eA==", sandbox });
    assert.deepEqual((await write(`${dir}/ok`, workspace)).result, {});
    assert.equal(await Deno.readTextFile(`${dir}/ok`), "x");
    for (const path of [`${outside}/x`, `${dir}/escape/x`, `${dir}/.git/config`]) {
      const response = await write(path, workspace);
      assert.equal(response.error?.code, -32600, path);
      assert.match(response.error.message, /is not permitted by the sandbox policy/);
      assert.equal(await Deno.stat(path).catch(() => null), null, `${path} was written`);
    }
    // A copy reads its source and writes its destination: both are checked.
    const copy = await client.request("fs/copy", {
      sourcePath: `${dir}/ok`,
      destinationPath: `${dir}/escape/copied`,
      recursive: false,
      sandbox: workspace,
    });
    assert.equal(copy.error?.code, -32600);
    // Read-only: reads work, writes do not; the older protocol's policies too.
    const readOnly = managed([root]);
    const read = await client.request("fs/readFile", { path: `${dir}/ok`, sandbox: readOnly });
    assert.equal(read.result.dataBase64, "eA==");
    assert.equal((await write(`${dir}/ro`, readOnly)).error?.code, -32600);
    const legacyReadOnly = { sandboxPolicy: { type: "read-only" } };
    assert.equal((await write(`${dir}/ro`, legacyReadOnly)).error?.code, -32600);
    const legacyFull = { sandboxPolicy: { type: "danger-full-access" } };
    assert.deepEqual((await write(`${dir}/full`, legacyFull)).result, {});
    // A denied path cannot even be read.
    const denied = managed([root, { path: { type: "path", path: outside }, access: "deny" }]);
    const hidden = await client.request("fs/readFile", {
      path: `${outside}/secret`,
      sandbox: denied,
    });
    assert.equal(hidden.error?.code, -32600);
    const glob = managed([root, {
      path: { type: "glob_pattern", pattern: "*.env" },
      access: "deny",
    }]);
    assert.equal((await write(`${dir}/g`, glob)).error?.code, -32602);
  } finally {
    await client.close();
    await executor.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("remote: sandboxed fs requests on whole trees: a walk leaves denied paths out; a recursive remove or copy that holds one is refused", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_fs_tree_" }));
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  try {
    await Deno.mkdir(`${dir}/ws/secret`, { recursive: true });
    await Deno.mkdir(`${dir}/ws/.git`);
    await Deno.mkdir(`${dir}/ws/docs`);
    await Deno.writeTextFile(`${dir}/ws/secret/key`, "s3cret");
    await Deno.writeTextFile(`${dir}/ws/docs/readme`, "r");
    const denySecret = { path: { type: "path", path: `file://${dir}/ws/secret` }, access: "deny" };
    const docsReadOnly = { path: { type: "path", path: `${dir}/ws/docs` }, access: "read" };
    const sandbox = {
      ...managed([root, projectWrite, denySecret, docsReadOnly]),
      cwd: `file://${dir}/ws`,
    };
    const walk = await client.request("fs/walk", {
      path: `file://${dir}/ws`,
      options: { maxDepth: 5, maxEntries: 100, maxDirectories: 100, followDirectorySymlinks: true },
      sandbox,
    });
    const walked = walk.result.entries.map((e: { path: string }) => e.path).sort();
    assert.deepEqual(walked, [
      `file://${dir}/ws/.git`,
      `file://${dir}/ws/docs`,
      `file://${dir}/ws/docs/readme`,
    ]);
    const refused = async (method: string, params: Record<string, unknown>, what: RegExp) => {
      const response = await client.request(method, { ...params, sandbox });
      assert.equal(response.error?.code, -32600, `${method} ${JSON.stringify(params)}`);
      assert.match(response.error.message, what);
    };
    await refused("fs/remove", { path: `${dir}/ws`, recursive: true }, /contains .*secret/);
    await refused(
      "fs/copy",
      { sourcePath: `${dir}/ws`, destinationPath: `${dir}/ws/docs-copy`, recursive: true },
      /contains .*secret, which is denied/,
    );
    // A read entry inside a writable root stays read-only there, as in the process sandbox.
    await refused(
      "fs/writeFile",
      { path: `${dir}/ws/docs/new`, dataBase64: "eA==" },
      /\(read-only\)/,
    );
    await refused("fs/remove", { path: `${dir}/ws/.git` }, /\.git is read-only/);
    assert.equal(await Deno.readTextFile(`${dir}/ws/secret/key`), "s3cret");
    assert.equal(await Deno.stat(`${dir}/ws/docs-copy`).catch(() => null), null);
    // Without the carve-outs the same tree can go.
    const free = { ...managed([root, projectWrite]), cwd: `file://${dir}/ws` };
    await Deno.remove(`${dir}/ws/.git`);
    const removed = await client.request("fs/remove", {
      path: `${dir}/ws/docs`,
      recursive: true,
      sandbox: free,
    });
    assert.deepEqual(removed.result, {});
  } finally {
    await client.close();
    await executor.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

each(
  "no capabilities inside, and with the network off the host's Unix sockets are out of reach",
  async (backend, dir) => {
    const socketPath = `${dir}/host.sock`;
    const listener = Deno.listen({ transport: "unix", path: socketPath });
    const served = (async () => {
      for await (const conn of listener) conn.close();
    })();
    const connect = `perl -MIO::Socket::UNIX -e ` +
      `'IO::Socket::UNIX->new(Peer => "${socketPath}") or die "no: $!\\n"; print "CONNECTED\\n"' 2>&1`;
    try {
      const closed = await run(
        backend,
        `grep CapEff /proc/self/status; ${connect}; mount -o remount,rw / 2>/dev/null || echo NOMOUNT`,
        { cwd: dir, sandbox: managed([root], "restricted") },
      );
      assert.equal(
        closed.output,
        "CapEff:\t0000000000000000\nno: Operation not permitted\nNOMOUNT\n",
      );
      const open = await run(backend, connect, { cwd: dir, sandbox: managed([root], "enabled") });
      assert.equal(open.output, "CONNECTED\n");
    } finally {
      listener.close();
      await served;
    }
  },
);

each(
  "a subpath narrows any special entry, and one that climbs out is refused",
  async (backend, dir) => {
    await Deno.mkdir(`${dir}/inner`);
    // `root` with a subpath: only that directory is writable.
    const innerWrite = {
      path: { type: "special", value: { kind: "root", subpath: dir.slice(1) + "/inner" } },
      access: "write",
    };
    const result = await run(
      backend,
      `echo a > inner/a && echo INNER; (echo b > b) 2>/dev/null || echo OUTER_REFUSED`,
      { cwd: dir, sandbox: managed([root, innerWrite]) },
    );
    assert.equal(result.output, "INNER\nOUTER_REFUSED\n");
    const climbing = {
      path: { type: "special", value: { kind: "slash_tmp", subpath: "../etc" } },
      access: "write",
    };
    const error = await run(backend, "true", { cwd: dir, sandbox: managed([root, climbing]) })
      .then(() => null, (caught) => caught);
    assert.ok(error instanceof RpcError);
    assert.equal(error.code, INVALID_PARAMS);
    assert.match(error.message, /subpath `\.\.\/etc` of a `slash_tmp` entry climbs out/);
    const notAnObject = await run(backend, "true", { cwd: dir, sandbox: "on" })
      .then(() => null, (caught) => caught);
    assert.match(notAnObject.message, /^invalid params for process\/start: sandbox: Invalid input/);
  },
);
