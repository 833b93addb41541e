/**
 * The launcher (src/process/launcher.ts): its bytes are what its assembly
 * sources assemble to, it starts a program in a new session with the given
 * argv[0], and spawning falls back to `setsid` wherever it can't be used.
 */

import assert from "node:assert/strict";
import { buildLauncher, launcherCode } from "../src/process/launcher.ts";
import { spawnSession } from "../src/process/spawn.ts";
import { denoEval } from "./support/deno_eval.ts";

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Tests that run the launcher need Linux on a CPU it has code for. */
const NO_LAUNCHER = Deno.build.os !== "linux" || buildLauncher(Deno.build.arch) === null;

const SOURCES = new URL("../src/process/", import.meta.url);
const decoder = new TextDecoder();

function has(program: string): boolean {
  try {
    new Deno.Command(program, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

for (const arch of ["x86_64", "aarch64"]) {
  // binutils for the CPU: the native ones, or a cross toolchain's.
  const prefix = arch === Deno.build.arch ? "" : `${arch}-linux-gnu-`;
  const [as, objcopy] = [`${prefix}as`, `${prefix}objcopy`];
  Deno.test({
    name: `launcher: the ${arch} bytes are what launcher_${arch}.S assembles to`,
    // Skipped without binutils for that CPU; the bytes are also run below, on this CPU.
    ignore: !has(as) || !has(objcopy),
    async fn() {
      const dir = await Deno.makeTempDir();
      try {
        const source = new URL(`launcher_${arch}.S`, SOURCES).pathname;
        const run = async (program: string, args: string[]) => {
          const out = await new Deno.Command(program, { args, stderr: "piped" }).output();
          assert.equal(out.code, 0, `${program} failed: ${decoder.decode(out.stderr)}`);
        };
        await run(as, ["-o", `${dir}/l.o`, source]);
        await run(objcopy, ["-O", "binary", "-j", ".text", `${dir}/l.o`, `${dir}/l.bin`]);
        assert.deepEqual(await Deno.readFile(`${dir}/l.bin`), launcherCode(arch));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

async function withLauncher(fn: (launcher: string) => Promise<void>): Promise<void> {
  const elf = buildLauncher(Deno.build.arch);
  assert.ok(elf !== null, `no launcher for ${Deno.build.arch}`);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/launcher`, elf, { mode: 0o700 });
    await fn(`${dir}/launcher`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "launcher: runs PATH in a new session under the same pid, with ARGV0 and the env as given",
  ignore: NO_LAUNCHER,
  async fn() {
    await withLauncher(async (launcher) => {
      // For `sh -c SCRIPT NAME`, $0 is NAME; argv[0] is the first field of the cmdline.
      const script =
        'echo "$$ $(cut -d" " -f6 /proc/$$/stat) $(tr "\\0" "\\n" </proc/$$/cmdline | head -1) $0 $X"';
      const out = await new Deno.Command(launcher, {
        args: ["/bin/sh", "renamed", "-c", script, "arg"],
        env: { X: "from-env" },
        clearEnv: true,
        stdout: "piped",
      }).output();
      assert.equal(out.code, 0);
      const [pid, sid, ...rest] = decoder.decode(out.stdout).trim().split(" ");
      assert.equal(sid, pid, "not a session leader");
      assert.deepEqual(rest, ["renamed", "arg", "from-env"]);
    });
  },
});

Deno.test({
  name: "launcher: a script without #! runs under sh; what can't run exits 127 or 126 and says so",
  ignore: NO_LAUNCHER,
  async fn() {
    await withLauncher(async (launcher) => {
      const dir = launcher.slice(0, launcher.lastIndexOf("/"));
      await Deno.writeTextFile(`${dir}/plain.sh`, 'echo "plain $1"\n', { mode: 0o700 });
      await Deno.writeTextFile(`${dir}/data.txt`, "not a program\n", { mode: 0o600 });
      const run = (args: string[]) =>
        new Deno.Command(launcher, { args, stdout: "piped", stderr: "piped" }).output();
      const script = await run([`${dir}/plain.sh`, "plain.sh", "ok"]);
      assert.equal(script.code, 0);
      assert.equal(decoder.decode(script.stdout), "plain ok\n");
      const missing = await run([`${dir}/missing`, "missing"]);
      assert.equal(missing.code, 127);
      assert.equal(
        decoder.decode(missing.stderr),
        `execbridge launcher: cannot execute ${dir}/missing\n`,
      );
      const denied = await run([`${dir}/data.txt`, "data.txt"]);
      assert.equal(denied.code, 126);
    });
  },
});

const spawnModule = new URL("../src/process/spawn.ts", import.meta.url).href;
const launcherModule = new URL("../src/process/launcher.ts", import.meta.url).href;

Deno.test({
  name:
    "spawn: installs the launcher in a private cache dir; falls back to setsid when it can't run",
  ignore: NO_LAUNCHER,
  async fn() {
    const cache = await Deno.makeTempDir();
    try {
      // The launcher is installed and used; then made unrunnable: the next
      // spawn still works (through setsid), and the launcher is dropped.
      const code = `
        import { spawnSession } from ${JSON.stringify(spawnModule)};
        import { findLauncher } from ${JSON.stringify(launcherModule)};
        const run = async () => {
          const child = spawnSession(["sh", "-c", 'echo "$0 $$ $(cut -d" " -f6 /proc/$$/stat)"'], {
            cwd: "/", env: { PATH: Deno.env.get("PATH") }, pipeStdin: false, arg0: "named",
          });
          const text = new TextDecoder().decode((await child.output()).stdout).trim();
          const [arg0, pid, sid] = text.split(" ");
          if (pid !== sid) throw new Error("not in its own session: " + text);
          return arg0;
        };
        const launcher = findLauncher();
        const first = await run();
        Deno.chmodSync(launcher, 0o600);
        const second = await run();
        console.log(JSON.stringify({ launcher, first, second, after: findLauncher() }));
      `;
      const result = JSON.parse(await denoEval(code, { env: { XDG_CACHE_HOME: cache } }));
      assert.ok(result.launcher.startsWith(`${cache}/execbridge/launcher-`), result.launcher);
      const info = await Deno.stat(`${cache}/execbridge`);
      assert.equal(info.mode! & 0o777, 0o700);
      assert.deepEqual([result.first, result.second, result.after], ["named", "named", null]);
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  },
});

Deno.test({
  name: "spawn: EXECBRIDGE_LAUNCHER=setsid or a cache dir others can write means no launcher",
  ignore: NO_LAUNCHER,
  async fn() {
    const cache = await Deno.makeTempDir();
    const tmp = await Deno.makeTempDir();
    try {
      const code = `
        import { findLauncher } from ${JSON.stringify(launcherModule)};
        console.log(JSON.stringify(findLauncher()));
      `;
      const off = await denoEval(code, {
        env: { XDG_CACHE_HOME: cache, EXECBRIDGE_LAUNCHER: "setsid" },
      });
      assert.equal(off, "null");
      assert.ok(!existsSync(`${cache}/execbridge`), "installed although turned off");
      // A shared directory is refused (someone else could swap the file): the temp dir is used.
      await Deno.mkdir(`${cache}/execbridge`, { mode: 0o777 });
      await Deno.chmod(`${cache}/execbridge`, 0o777);
      const used = JSON.parse(
        await denoEval(code, { env: { XDG_CACHE_HOME: cache, TMPDIR: tmp } }),
      );
      assert.ok(used.startsWith(`${tmp}/execbridge-${Deno.uid()}/launcher-`), used);
      // So is a private directory inside a shared one (someone could rename it away).
      await Deno.mkdir(`${cache}/shared`);
      await Deno.chmod(`${cache}/shared`, 0o777);
      const inShared = JSON.parse(
        await denoEval(code, {
          env: { XDG_CACHE_HOME: `${cache}/shared`, TMPDIR: `${cache}/shared` },
        }),
      );
      assert.equal(inShared, null);
      assert.ok(existsSync(`${cache}/shared/execbridge`), "the private directory was made");
    } finally {
      await Deno.remove(cache, { recursive: true });
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("spawn: a relative cwd works, with ./PROGRAM and with PATH entries relative to it", async () => {
  const base = await Deno.makeTempDir({ dir: Deno.cwd(), prefix: ".spawn-cwd-" });
  try {
    await Deno.writeTextFile(`${base}/tool`, "#!/bin/sh\necho ran $0 in $(pwd)\n", { mode: 0o755 });
    const relative = base.slice(Deno.cwd().length + 1);
    const run = async (argv: string[], env: Record<string, string>) => {
      const child = spawnSession(argv, { cwd: relative, env, pipeStdin: false });
      const out = await child.output();
      return `${out.code} ${decoder.decode(out.stdout).trim()}`;
    };
    const expected = `0 ran ./tool in ${base}`;
    assert.equal(await run(["./tool"], { PATH: "/usr/bin:/bin" }), expected);
    assert.equal(
      await run(["tool"], { PATH: ".:/usr/bin:/bin" }),
      `0 ran ${base}/./tool in ${base}`,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
