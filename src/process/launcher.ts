/**
 * The launcher: a 300-byte static Linux program that calls `setsid()` and
 * execs the real program under the same pid, so a child starts in its own
 * session (and process group) without util-linux `setsid`, whose exec costs
 * ~0.8 ms per start here (a dynamic binary: loader, libc, locale), nor
 * Deno's `detached: true`, which forks the whole executor (see spawn.ts).
 *
 * The machine code is in `launcher_x86_64.S` and `launcher_aarch64.S` next to
 * this file, with the bytes below checked against them by a test. It is
 * written once per user to `~/.cache/execbridge/` (or a private directory
 * under the temp dir), into a directory only this user can write, and only
 * used when its bytes are exactly these. Anywhere it can't be used (another
 * OS or CPU, no writable private directory, a `noexec` mount, missing
 * permissions, `EXECBRIDGE_LAUNCHER=setsid`), spawn.ts falls back to
 * `setsid`.
 *
 * Usage: `launcher PATH ARGV0 ARGS...` (PATH is resolved by the caller).
 *
 * @module
 */

/** The launcher's code (`.text` of the `.S` files), by Deno's CPU name. */
const CODE: Record<string, { machine: number; hex: string }> = {
  x86_64: {
    machine: 62, // EM_X86_64
    hex: "b8700000000f05488b7c2410488d742418488b1424488d54d410b83b0000000f0583f8f8751848897c" +
      "2418488d742410488d3d3a000000b83b0000000f0541bc7e00000083f8fe750641bc7f000000bf0200" +
      "0000488d351e000000ba30000000b8010000000f054489e7b8e70000000f052f62696e2f7368006578" +
      "6563627269646765206c61756e636865723a2063616e6e6f742065786563757465207468652070726f" +
      "6772616d0a",
  },
  aarch64: {
    machine: 183, // EM_AARCH64
    hex: "a81380d2010000d4e00b40f9e1630091e20340f9e26f228b42400091a81b80d2010000d41f2000b1e1" +
      "000054e00b40f9e00f00f9e1430091e0010010a81b80d2010000d4d30f80d21f0800b141000054f30f" +
      "80d2400080d221010010020680d2080880d2010000d4e00313aac80b80d2010000d42f62696e2f7368" +
      "0065786563627269646765206c61756e636865723a2063616e6e6f742065786563757465207468652" +
      "070726f6772616d0a",
  },
};

const BASE = 0x400000;
const ELF_HEADER = 64;
const PROGRAM_HEADER = 56;

/** The machine code of the launcher for `arch` (as in `Deno.build.arch`), or null. */
export function launcherCode(arch: string): Uint8Array | null {
  const entry = CODE[arch];
  return entry === undefined ? null : Uint8Array.fromHex(entry.hex);
}

/**
 * The launcher as a complete ELF executable for `arch`: an ELF header, one
 * read+execute `PT_LOAD` segment (the whole file at 0x400000), the code.
 * Null for a CPU it has no code for.
 */
export function buildLauncher(arch: string): Uint8Array | null {
  const code = launcherCode(arch);
  if (code === null) return null;
  const size = ELF_HEADER + PROGRAM_HEADER + code.byteLength;
  const elf = new Uint8Array(size);
  const view = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // \x7fELF, 64-bit, little-endian, version 1
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, CODE[arch].machine, true);
  view.setUint32(20, 1, true); // EV_CURRENT
  view.setBigUint64(24, BigInt(BASE + ELF_HEADER + PROGRAM_HEADER), true); // entry
  view.setBigUint64(32, BigInt(ELF_HEADER), true); // program headers offset
  view.setUint16(52, ELF_HEADER, true);
  view.setUint16(54, PROGRAM_HEADER, true);
  view.setUint16(56, 1, true); // one program header
  const ph = ELF_HEADER;
  view.setUint32(ph, 1, true); // PT_LOAD
  view.setUint32(ph + 4, 5, true); // PF_R | PF_X
  view.setBigUint64(ph + 16, BigInt(BASE), true); // p_vaddr
  view.setBigUint64(ph + 24, BigInt(BASE), true); // p_paddr
  view.setBigUint64(ph + 32, BigInt(size), true); // p_filesz
  view.setBigUint64(ph + 40, BigInt(size), true); // p_memsz
  view.setBigUint64(ph + 48, 0x1000n, true); // p_align
  elf.set(code, ELF_HEADER + PROGRAM_HEADER);
  return elf;
}

/** Where the launcher is in this isolate: unknown yet, none, or a path. */
let installed: string | null | undefined;

/**
 * The path of a usable launcher, installing it on first use; null when
 * there is none here (spawn.ts then uses `setsid`). Never throws.
 */
export function findLauncher(): string | null {
  if (installed === undefined) installed = install();
  return installed;
}

/** Stops using the launcher in this isolate (it failed to run: a `noexec` mount, say). */
export function disableLauncher(): void {
  installed = null;
}

function install(): string | null {
  try {
    if (Deno.build.os !== "linux") return null;
    if (Deno.env.get("EXECBRIDGE_LAUNCHER") === "setsid") return null;
    const elf = buildLauncher(Deno.build.arch);
    if (elf === null) return null;
    const name = `launcher-${Deno.build.arch}-${fnv1a(elf)}`;
    for (const dir of candidateDirs()) {
      const path = installIn(dir, name, elf);
      if (path !== null) return path;
    }
  } catch {
    // No permission to read the environment or the user id: no launcher.
  }
  return null;
}

function candidateDirs(): string[] {
  const dirs: string[] = [];
  const cache = Deno.env.get("XDG_CACHE_HOME") ||
    (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache` : "");
  if (cache.startsWith("/")) dirs.push(`${cache}/execbridge`);
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  if (tmp.startsWith("/")) dirs.push(`${tmp}/execbridge-${Deno.uid()}`);
  return dirs;
}

/** Puts the launcher into `dir` (made private to this user) unless it is there already. */
function installIn(dir: string, name: string, elf: Uint8Array): string | null {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const info = Deno.lstatSync(dir);
    // Only a directory no one else can write to: nobody may swap the file.
    if (!info.isDirectory || info.uid !== Deno.uid() || ((info.mode ?? 0) & 0o022) !== 0) {
      return null;
    }
    const path = `${dir}/${name}`;
    if (holds(path, elf)) return path;
    const temp = `${path}.${crypto.randomUUID()}.tmp`;
    Deno.writeFileSync(temp, elf, { mode: 0o700, createNew: true });
    Deno.renameSync(temp, path);
    return holds(path, elf) ? path : null;
  } catch {
    return null;
  }
}

/** True when `path` is a regular executable file of ours holding exactly `elf`. */
function holds(path: string, elf: Uint8Array): boolean {
  try {
    const info = Deno.lstatSync(path);
    if (!info.isFile || info.uid !== Deno.uid() || ((info.mode ?? 0) & 0o100) === 0) return false;
    if (info.size !== elf.byteLength) return false;
    const bytes = Deno.readFileSync(path);
    return bytes.every((byte, i) => byte === elf[i]);
  } catch {
    return false;
  }
}

/** A short content hash for the file name, so a new version never reuses an old file. */
function fnv1a(bytes: Uint8Array): string {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, "0");
}
