/**
 * The launcher: a 400-byte static Linux program that calls `setsid()` and
 * execs the real program under the same pid, so a child starts in its own
 * session (and process group) without util-linux `setsid`, whose exec costs
 * ~0.8 ms per start here (a dynamic binary: loader, libc, locale), nor
 * Deno's `detached: true`, which forks the whole executor (see spawn.ts).
 *
 * The machine code is in `launcher_x86_64.S` and `launcher_aarch64.S` next to
 * this file, with the bytes below checked against them by a test. It is
 * written once per user to `~/.cache/execbridge/` (or `$TMPDIR/execbridge-UID`)
 * and only used there when no other user can change that directory or any
 * directory above it, and when its bytes are exactly these. Anywhere it
 * can't be used (another OS or CPU, no such directory, a `noexec` mount,
 * missing permissions, `EXECBRIDGE_LAUNCHER=setsid`), spawn.ts falls back to
 * `setsid`.
 *
 * Usage: `launcher PATH ARGV0 ARGS...` (PATH is resolved by the caller).
 *
 * @module
 */

import { readEnv } from "../util/env.ts";

/** The launcher's code (`.text` of the `.S` files), by Deno's CPU name. */
const CODE: Record<string, { machine: number; hex: string }> = {
  x86_64: {
    machine: 62, // EM_X86_64
    hex: "b8700000000f054885c0783e488b7c2410488d742418488b1424488d54d410b83b0000000f0583f8" +
      "f8751f48833c2403721848897c2418488d742410488d3d78000000b83b0000000f0541bc7e000000" +
      "83f8fe750641bc7f000000bf02000000488d355d000000ba24000000b8010000000f05488b742410" +
      "4885f6741c4889f2803a00740548ffc2ebf64829f2bf02000000b8010000000f05bf02000000488d" +
      "351e000000ba01000000b8010000000f054489e7b8e70000000f052f62696e2f7368000a65786563" +
      "627269646765206c61756e636865723a2063616e6e6f74206578656375746520",
  },
  aarch64: {
    machine: 183, // EM_AARCH64
    hex: "a81380d2010000d46002f8b7e00b40f9e1630091e20340f9e26f228b42400091a81b80d2010000d4" +
      "1f2000b141010054e30340f97f0c00f1e3000054e00b40f9e00f00f9e1430091e0030010a81b80d2" +
      "010000d4d30f80d21f0800b141000054f30f80d2400080d221030030820480d2080880d2010000d4" +
      "e10b40f9410100b4e20301aa430040396300003442040091fdffff17420001cb400080d2080880d2" +
      "010000d4400080d221010010220080d2080880d2010000d4e00313aac80b80d2010000d42f62696e" +
      "2f7368000a65786563627269646765206c61756e636865723a2063616e6e6f742065786563757465" +
      "20",
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
 * The launcher as a complete ELF executable for `arch`: an ELF header, two
 * program headers (one read+execute `PT_LOAD` segment with the whole file
 * at 0x400000, and a `PT_GNU_STACK` that keeps the stack non-executable),
 * then the code. Null for a CPU it has no code for.
 */
export function buildLauncher(arch: string): Uint8Array | null {
  const code = launcherCode(arch);
  if (code === null) return null;
  const headers = ELF_HEADER + 2 * PROGRAM_HEADER;
  const size = headers + code.byteLength;
  const elf = new Uint8Array(size);
  const view = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // \x7fELF, 64-bit, little-endian, version 1
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, CODE[arch].machine, true);
  view.setUint32(20, 1, true); // EV_CURRENT
  view.setBigUint64(24, BigInt(BASE + headers), true); // entry: the first instruction
  view.setBigUint64(32, BigInt(ELF_HEADER), true); // program headers offset
  view.setUint16(52, ELF_HEADER, true);
  view.setUint16(54, PROGRAM_HEADER, true);
  view.setUint16(56, 2, true); // two program headers
  const load = ELF_HEADER;
  view.setUint32(load, 1, true); // PT_LOAD
  view.setUint32(load + 4, 5, true); // PF_R | PF_X
  view.setBigUint64(load + 16, BigInt(BASE), true); // p_vaddr
  view.setBigUint64(load + 24, BigInt(BASE), true); // p_paddr
  view.setBigUint64(load + 32, BigInt(size), true); // p_filesz
  view.setBigUint64(load + 40, BigInt(size), true); // p_memsz
  view.setBigUint64(load + 48, 0x1000n, true); // p_align
  const stack = ELF_HEADER + PROGRAM_HEADER;
  view.setUint32(stack, 0x6474e551, true); // PT_GNU_STACK
  view.setUint32(stack + 4, 6, true); // PF_R | PF_W
  view.setBigUint64(stack + 48, 16n, true); // p_align
  elf.set(code, headers);
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

/**
 * After the launcher failed to run: a missing file is installed again on
 * the next spawn; otherwise (a `noexec` mount, say) it is not used again in
 * this isolate.
 */
export function launcherFailed(error: unknown): void {
  installed = error instanceof Deno.errors.NotFound ? undefined : null;
}

function install(): string | null {
  try {
    if (Deno.build.os !== "linux") return null;
    if (readEnv("EXECBRIDGE_LAUNCHER") === "setsid") return null;
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
  const home = readEnv("HOME");
  const cache = readEnv("XDG_CACHE_HOME") ?? (home ? `${home}/.cache` : "");
  if (cache.startsWith("/")) dirs.push(`${cache}/execbridge`);
  const tmp = readEnv("TMPDIR") ?? "/tmp";
  if (tmp.startsWith("/")) dirs.push(`${tmp}/execbridge-${Deno.uid()}`);
  return dirs;
}

/**
 * Puts the launcher into `dir` unless it is there already. Only in a
 * directory no one else can change: `dir` made private to this user, and
 * every directory above it owned by root or this user and not writable by
 * others (unless sticky, like /tmp), so that nobody can swap the file or a
 * directory on its path between this check and a spawn.
 */
function installIn(dir: string, name: string, elf: Uint8Array): string | null {
  let temp: string | null = null;
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const real = Deno.realPathSync(dir);
    const info = Deno.lstatSync(real);
    if (info.uid !== Deno.uid() || ((info.mode ?? 0) & 0o022) !== 0) return null;
    if (!trustedAncestors(real)) return null;
    const path = `${real}/${name}`;
    if (holds(path, elf)) return path;
    temp = `${path}.${crypto.randomUUID()}.tmp`;
    Deno.writeFileSync(temp, elf, { mode: 0o700, createNew: true });
    Deno.renameSync(temp, path);
    temp = null;
    return holds(path, elf) ? path : null;
  } catch {
    return null;
  } finally {
    if (temp !== null) {
      try {
        Deno.removeSync(temp);
      } catch {
        // Never written.
      }
    }
  }
}

/** True when every directory above `path` (a real path) is safe from other users. */
function trustedAncestors(path: string): boolean {
  const uid = Deno.uid();
  for (let dir = parent(path); dir !== null; dir = parent(dir)) {
    const info = Deno.lstatSync(dir);
    const mode = info.mode ?? 0;
    if (info.uid !== 0 && info.uid !== uid) return false;
    if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0) return false;
  }
  return true;
}

function parent(path: string): string | null {
  if (path === "/") return null;
  const cut = path.lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
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
