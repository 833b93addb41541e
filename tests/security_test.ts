/**
 * Secure by default: tokens (default file, file permissions, --no-auth on
 * loopback only), Host/Origin checks, health endpoints, TLS, limits, log
 * hygiene, and what happens to children when the executor dies.
 */

import assert from "node:assert/strict";
import { connectExecutor } from "../mod.ts";
import { bearerMatches } from "../src/auth/bearer.ts";
import { startExecutor } from "./support/executor_process.ts";
import { isRunning, waitGone } from "./support/processes.ts";
import { RawClient } from "./support/raw_client.ts";
import { portOf, rawUpgrade } from "./support/raw_socket.ts";
import { ENV } from "./support/backends.ts";
import { cliArgs, CONFIG, MOD, runCli } from "./support/cli.ts";

/** Runs `serve` expecting it to refuse to start. */
function serveFails(args: string[], env: Record<string, string> = {}) {
  return runCli(["serve", ...args], { env });
}

Deno.test("security: without a token option the executor creates and reuses a private default token", async () => {
  const state = await Deno.makeTempDir();
  const env = { XDG_STATE_HOME: state, EXECBRIDGE_TOKEN: "" };
  try {
    const first = await startExecutor(["--log-level", "info"], { env });
    const path = `${state}/execbridge/token`;
    const token = (await Deno.readTextFile(path)).trim();
    assert.ok(token.length >= 43, "256 random bits");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${state}/execbridge`)).mode! & 0o777, 0o700);
    await assert.rejects(connectExecutor(first.url, { token: "wrong" }), /401/);
    const client = await connectExecutor(first.url, { tokenFile: path });
    await client.close();
    await first.stop();
    assert.ok(first.stderr().includes(path), "the token path is printed on stderr");
    assert.ok(!first.stderr().includes(token), "the token itself is never printed");

    // Restarted, it keeps the same token; a client with the same state dir finds it on its own.
    const second = await startExecutor([], { env });
    try {
      assert.equal((await Deno.readTextFile(path)).trim(), token);
      const script = `import { connectExecutor } from "${MOD}";
        const c = await connectExecutor(Deno.args[0]); console.log(c.sessionId); await c.close();`;
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", CONFIG, script, second.url],
        env,
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    } finally {
      await second.stop();
    }
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});

Deno.test("security: a token file readable by others is refused; --no-auth only on loopback", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "secret\n");
    await Deno.chmod(file, 0o644);
    const loose = await serveFails(["--token-file", file]);
    assert.notEqual(loose.code, 0);
    assert.match(loose.stderr, /readable by others.*chmod 600/);
    assert.equal(loose.stdout, "");
  } finally {
    await Deno.remove(file);
  }
  const exposed = await serveFails(["--listen", "ws://0.0.0.0:0", "--no-auth"]);
  assert.notEqual(exposed.code, 0);
  assert.match(exposed.stderr, /--no-auth is only allowed on a loopback address/);

  const executor = await startExecutor(["--no-auth"], { env: { EXECBRIDGE_TOKEN: "" } });
  try {
    const client = await RawClient.connect(executor.url, {});
    assert.match((await client.request("initialize", { clientName: "t" })).result.sessionId, /-/);
    await client.close();
  } finally {
    await executor.stop();
  }
});

Deno.test("security: no token, a wrong one, or one in the wrong place gets 401", async () => {
  const executor = await startExecutor([]);
  const port = portOf(executor.url);
  const host = `127.0.0.1:${port}`;
  const token = Deno.env.get("EXECBRIDGE_TOKEN")!;
  try {
    const attempts: [string, Record<string, string>][] = [
      ["/", { Host: host }],
      ["/", { Host: host, Authorization: "Bearer wrong" }],
      ["/", { Host: host, Authorization: token }],
      ["/", { Host: host, Authorization: `Basic ${btoa(`x:${token}`)}` }],
      [`/?token=${token}`, { Host: host }],
      [`/?access_token=${token}`, { Host: host }],
      ["/", { Host: host, Cookie: `token=${token}` }],
      ["/", { Host: host, "Sec-WebSocket-Protocol": token }],
    ];
    for (const [path, headers] of attempts) {
      const { conn, status } = await rawUpgrade(port, headers, path);
      conn.close();
      assert.equal(status, 401, `${path} ${JSON.stringify(headers)}`);
    }
    const ok = await rawUpgrade(port, { Host: host, Authorization: `Bearer ${token}` });
    ok.conn.close();
    assert.equal(ok.status, 101);
  } finally {
    await executor.stop();
  }
});

Deno.test("security: evil Origin and evil Host get 403; allowed ones pass", async () => {
  const executor = await startExecutor([
    "--allow-origin",
    "https://ide.example",
    "--allow-host",
    "devbox.internal",
  ]);
  const port = portOf(executor.url);
  const auth = { Authorization: `Bearer ${Deno.env.get("EXECBRIDGE_TOKEN")}` };
  const status = async (headers: Record<string, string>) => {
    const result = await rawUpgrade(port, { ...auth, ...headers });
    result.conn.close();
    return result.status;
  };
  try {
    assert.equal(await status({ Host: `127.0.0.1:${port}`, Origin: "https://evil.example" }), 403);
    assert.equal(await status({ Host: `127.0.0.1:${port}`, Origin: "null" }), 403);
    assert.equal(await status({ Host: `evil.example:${port}` }), 403);
    assert.equal(await status({ Host: `127.0.0.1:${port + 1}` }), 403);
    assert.equal(await status({}), 403);
    // Without auth the Host check still comes first: nothing about the token leaks.
    const noAuth = await rawUpgrade(port, { Host: `rebind.example:${port}` });
    noAuth.conn.close();
    assert.equal(noAuth.status, 403);

    assert.equal(await status({ Host: `127.0.0.1:${port}` }), 101);
    assert.equal(await status({ Host: `localhost:${port}` }), 101);
    assert.equal(await status({ Host: `devbox.internal:${port}` }), 101);
    assert.equal(await status({ Host: `127.0.0.1:${port}`, Origin: "https://ide.example" }), 101);
  } finally {
    await executor.stop();
  }
});

Deno.test("security: health endpoints answer without auth; other HTTP requests run nothing", async () => {
  const executor = await startExecutor([]);
  const base = executor.url.replace("ws://", "http://");
  try {
    for (const path of ["/healthz", "/readyz"]) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /^(ok|ready)\n$/);
    }
    const anonymous = await fetch(`${base}/`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const authed = await fetch(`${base}/anything`, {
      headers: { Authorization: `Bearer ${Deno.env.get("EXECBRIDGE_TOKEN")}` },
    });
    assert.equal(authed.status, 404);
    await authed.body?.cancel();
  } finally {
    await executor.stop();
  }
});

Deno.test("security: wss with a self-signed certificate made here", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A leaf certificate Deno accepts as its own trust anchor needs basicConstraints=CA:FALSE.
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(made.code, 0);
    const executor = await startExecutor([
      "--tls-cert",
      `${dir}/cert.pem`,
      "--tls-key",
      `${dir}/key.pem`,
    ]);
    try {
      assert.match(executor.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
      await assert.rejects(
        connectExecutor(executor.url),
        /certificate|UnknownIssuer|invalid peer/i,
      );
      const client = await connectExecutor(executor.url, { caFile: `${dir}/cert.pem` });
      const proc = await client.start({ processId: "p", argv: ["echo", "over tls"], env: ENV });
      const events = [];
      for await (const event of proc.events()) events.push(event);
      const out = events.find((e) => e.type === "output") as { chunk: Uint8Array };
      assert.equal(new TextDecoder().decode(out.chunk), "over tls\n");
      await client.close();
    } finally {
      await executor.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("security: each limit refuses with -32600 naming its flag", async () => {
  const executor = await startExecutor([
    "--max-processes-per-session",
    "2",
    "--max-sessions",
    "2",
    "--max-pending-requests",
    "2",
    "--max-frame-bytes",
    "4096",
  ]);
  try {
    const client = await RawClient.initialized(executor.url);
    const start = (id: string) =>
      client.request("process/start", { processId: id, argv: ["sleep", "30"], env: ENV });
    assert.ok((await start("a")).result);
    assert.ok((await start("b")).result);
    const third = await start("c");
    assert.equal(third.error.code, -32600);
    assert.match(third.error.message, /--max-processes-per-session/);

    const reads = [0, 1, 2].map(() =>
      client.request("process/read", { processId: "a", afterSeq: 0, waitMs: 2000 })
    );
    const refused = await reads[2];
    assert.equal(refused.error.code, -32600);
    assert.match(refused.error.message, /--max-pending-requests/);
    await Promise.all(reads);

    const second = await RawClient.initialized(executor.url);
    const third3 = await RawClient.connect(executor.url);
    const over = await third3.request("initialize", { clientName: "x" });
    assert.match(over.error.message, /--max-sessions/);

    // An oversized frame closes that connection with 1009 and nothing else.
    const big = await RawClient.connect(executor.url);
    big.socket.send("x".repeat(10_000));
    assert.equal((await big.closed).code, 1009);
    assert.ok((await client.request("process/terminate", { processId: "a" })).result.running);
    await Promise.all([client.close(), second.close(), third3.close(), big.close()]);
  } finally {
    await executor.stop();
  }
});

Deno.test("security: argv, environment values and tokens stay out of the logs", async () => {
  for (const level of ["info", "debug"]) {
    const executor = await startExecutor(["--log-level", level]);
    const client = await RawClient.initialized(executor.url);
    await client.request("process/start", {
      processId: "p",
      argv: ["echo", "ARGV-MARKER"],
      env: { ...ENV, SECRET_VALUE: "ENV-MARKER" },
    });
    await client.request("process/start", { processId: "bad", argv: ["no-such-ARGV-MARKER"] });
    await client.close();
    await executor.stop();
    const log = executor.stderr();
    assert.ok(!log.includes(Deno.env.get("EXECBRIDGE_TOKEN")!), `${level}: token logged`);
    assert.ok(!log.includes("ENV-MARKER"), `${level}: env logged`);
    if (level === "info") assert.ok(!log.includes("ARGV-MARKER"), "argv logged at info");
  }
});

Deno.test("security: when the executor is SIGKILLed its piped children do not live on", async () => {
  const executor = await startExecutor([]);
  const client = await RawClient.initialized(executor.url);
  // One reads stdin (it gets EOF), one writes output (it gets SIGPIPE).
  await client.request("process/start", {
    processId: "reader",
    argv: ["sh", "-c", "echo $$; cat"],
    env: ENV,
    pipeStdin: true,
  });
  await client.request("process/start", {
    processId: "writer",
    argv: ["sh", "-c", "echo $$; while true; do echo tick; sleep 0.05; done"],
    env: ENV,
  });
  const pidOf = async (id: string) =>
    Number(
      new TextDecoder().decode(Uint8Array.fromBase64(
        (await client.waitNotification((m) =>
          m.method === "process/output" && m.params.processId === id
        )).params.chunk,
      )).split("\n")[0],
    );
  const reader = await pidOf("reader");
  const writer = await pidOf("writer");
  assert.ok(isRunning(reader) && isRunning(writer));
  await executor.stop("SIGKILL");
  await client.close();
  assert.ok(await waitGone(reader), "the stdin reader outlived the executor");
  assert.ok(await waitGone(writer), "the output writer outlived the executor");
});

Deno.test("security: --exit-on-stdin-close stops the executor and its processes", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: cliArgs("serve", "--exit-on-stdin-close", "--log-level", "warn"),
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let url = "";
  while (!url.includes("\n")) url += (await reader.read()).value ?? "";
  const client = await connectExecutor(url.trim());
  const proc = await client.start({ processId: "p", argv: ["sleep", "300"], env: ENV });
  const events = proc.events();
  await child.stdin.close();
  const status = await child.status;
  assert.equal(status.code, 0);
  const last = [];
  for await (const event of events) last.push(event.type);
  assert.ok(last.includes("failed"));
  await client.close();
  while (!(await reader.read()).done) { /* drain */ }
});

Deno.test("bearerMatches: only the exact token, whatever its length or prefix", () => {
  const token = "s3cret-token";
  assert.ok(bearerMatches(`Bearer ${token}`, token));
  assert.ok(bearerMatches(`bearer   ${token}`, token));
  for (
    const header of [
      null,
      "",
      "Bearer",
      `Basic ${token}`,
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      "Bearer s3cret-tokem",
      `Bearer ${token}${token}`,
      "Bearer s",
    ]
  ) {
    assert.equal(bearerMatches(header, token), false, String(header));
  }
});
