/**
 * Executors started as a program and spoken to over its stdio:
 * `connectExecutor({ program, args })` with a local
 * `deno … serve --listen stdio`, and with `ssh` to a loopback `sshd`
 * (Debian `openssh-server`; skipped where it is not installed) started by
 * the test with keys made for it.
 */

import assert from "node:assert/strict";
import { connectExecutor, type ProgramTarget } from "../mod.ts";
import { cliArgs } from "./support/cli.ts";
import { waitGone } from "./support/processes.ts";
import { ENV } from "./support/backends.ts";

const SERVE_STDIO = cliArgs("serve", "--listen", "stdio");
const LOCAL: ProgramTarget = {
  program: Deno.execPath(),
  args: [...SERVE_STDIO, "--log-level", "warn"],
};

/** Runs a process on `target`'s executor: its output; a grandchild's pid, to see it go away. */
async function exercise(target: ProgramTarget): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "execbridge_program_" });
  const executor = await connectExecutor(target);
  let grandchild = 0;
  try {
    assert.notEqual(executor.environmentInfo, null);
    const echo = await executor.start({ processId: "echo", argv: ["echo", "hi"], env: ENV });
    assert.deepEqual(await echo.wait(), { exitCode: 0, signal: null });
    const { chunks } = await echo.read();
    assert.equal(new TextDecoder().decode(chunks[0].chunk), "hi\n");
    await executor.fs.writeFile(`${dir}/f`, new TextEncoder().encode("data"));
    assert.equal(new TextDecoder().decode(await executor.fs.readFile(`${dir}/f`)), "data");
    const tree = await executor.start({
      processId: "tree",
      argv: ["sh", "-c", "sleep 300 & echo $!; wait"],
      env: ENV,
    });
    for await (const event of tree.events()) {
      if (event.type === "output") {
        grandchild = Number(new TextDecoder().decode(event.chunk));
        break;
      }
    }
    assert.ok(grandchild > 0);
  } finally {
    // Ending its stdin stops the executor, which kills what it started.
    await executor.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(await waitGone(grandchild), "a process outlived the executor program");
}

Deno.test("program executor: a local `serve --listen stdio` runs processes and files; closing stops it and its processes", async () => {
  await exercise(LOCAL);
});

Deno.test("program executor: a program that cannot start, or ends at once, is a clear error", async () => {
  await assert.rejects(
    connectExecutor({ program: "no-such-executor-program" }),
    /cannot start the executor program "no-such-executor-program": .*check that it is installed/,
  );
  await assert.rejects(
    connectExecutor({ program: "sh", args: ["-c", "echo bye >&2; exit 3"] }),
    /exec-server transport disconnected/,
  );
});

const SSHD = "/usr/sbin/sshd";
const hasSshd = (() => {
  try {
    return Deno.statSync(SSHD).isFile && Deno.uid() === 0;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "program executor over ssh: a loopback sshd with a key made for the test",
  ignore: !hasSshd,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "execbridge_sshd_" });
    // sshd refuses to start without its privilege separation directory (the package's service makes it).
    await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    let sshd: Deno.ChildProcess | null = null;
    try {
      const keygen = (file: string) =>
        new Deno.Command("ssh-keygen", {
          args: ["-q", "-t", "ed25519", "-N", "", "-f", file],
          stdout: "null",
          stderr: "null",
        }).output();
      await keygen(`${dir}/host`);
      await keygen(`${dir}/client`);
      await Deno.copyFile(`${dir}/client.pub`, `${dir}/authorized_keys`);
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      await Deno.writeTextFile(
        `${dir}/sshd_config`,
        [
          `Port ${port}`,
          "ListenAddress 127.0.0.1",
          `HostKey ${dir}/host`,
          `AuthorizedKeysFile ${dir}/authorized_keys`,
          `PidFile ${dir}/sshd.pid`,
          "PermitRootLogin prohibit-password",
          "PasswordAuthentication no",
          "StrictModes no",
          "UsePAM no",
          "",
        ].join("\n"),
      );
      sshd = new Deno.Command(SSHD, {
        args: ["-D", "-e", "-f", `${dir}/sshd_config`],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // sshd says when it listens (-e: logs on stderr).
      const reader = sshd.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let log = "";
      while (!/Server listening/.test(log)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`sshd ended: ${log}`);
        log += value;
      }
      const drain = (async () => {
        while (!(await reader.read()).done) { /* keep sshd's stderr flowing */ }
      })();
      try {
        await exercise({
          program: "ssh",
          args: [
            "-p",
            String(port),
            "-i",
            `${dir}/client`,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "127.0.0.1",
            // A non-login shell runs it; `exec` leaves no shell between ssh and the executor.
            `exec ${Deno.execPath()} ${SERVE_STDIO.join(" ")} --log-level warn`,
          ],
        });
      } finally {
        sshd.kill("SIGTERM");
        await sshd.status;
        await drain;
        sshd = null;
      }
    } finally {
      if (sshd !== null) {
        try {
          sshd.kill("SIGKILL");
        } catch {
          // It ended on its own.
        }
        await sshd.stderr.cancel().catch(() => {});
        await sshd.status;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
