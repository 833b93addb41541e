/**
 * The seccomp filter of a sandbox without network. bwrap's own network
 * namespace removes every interface but loopback; what it leaves reachable
 * are the host's Unix sockets on paths the sandbox can see (a container
 * runtime's socket, a session bus, an agent), and io_uring, which can open
 * connections without the system calls a filter sees. As the reference's
 * Linux sandbox, the filter refuses them with EPERM: `connect`, `sendto`
 * with an address, `socket` and `socketpair` outside `AF_UNIX`, and
 * `io_uring_setup`; system calls of another ABI (i386, x32) are refused
 * too, so that they cannot go around it. Unix socket pairs and sockets a
 * process makes for itself keep working.
 *
 * The program is classic BPF, handed to `bwrap --seccomp FD` from a file:
 * the same bytes for every sandbox, written once (content-addressed, mode
 * 0600) under the executor's state directory.
 *
 * @module
 */

import { stateDirectory } from "../util/home.ts";

const AUDIT_ARCH: Record<string, number> = { x86_64: 0xc000003e, aarch64: 0xc00000b7 };
const SYSCALLS: Record<string, Record<string, number>> = {
  x86_64: { socket: 41, connect: 42, sendto: 44, socketpair: 53, io_uring_setup: 425 },
  aarch64: { socket: 198, socketpair: 199, connect: 203, sendto: 206, io_uring_setup: 425 },
};
/** x32 system calls on x86_64 have this bit set. */
const X32_BIT = 0x40000000;
const AF_UNIX = 1;
const EPERM = 1;

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | EPERM;
/** Offsets in `struct seccomp_data`: nr, arch, then six 64-bit args from 16 (little-endian). */
const NR = 0;
const ARCH = 4;
const arg = (index: number, high = false) => 16 + 8 * index + (high ? 4 : 0);

type Insn = { code: number; k: number; jt?: string; jf?: string } | { label: string };

/** Assembles a program whose jumps name labels (forward only, as BPF requires). */
function assemble(program: Insn[]): Uint8Array<ArrayBuffer> {
  const at = new Map<string, number>();
  let index = 0;
  for (const insn of program) {
    if ("label" in insn) at.set(insn.label, index);
    else index++;
  }
  const out = new DataView(new ArrayBuffer(index * 8));
  index = 0;
  for (const insn of program) {
    if ("label" in insn) continue;
    const offset = (label?: string) => {
      if (label === undefined) return 0;
      const distance = at.get(label)! - index - 1;
      if (distance < 0 || distance > 255) throw new Error(`seccomp: bad jump to ${label}`);
      return distance;
    };
    out.setUint16(index * 8, insn.code, true);
    out.setUint8(index * 8 + 2, offset(insn.jt));
    out.setUint8(index * 8 + 3, offset(insn.jf));
    out.setUint32(index * 8 + 4, insn.k, true);
    index++;
  }
  return new Uint8Array(out.buffer);
}

/** The filter for `arch` (`Deno.build.arch`); null for an architecture it does not know. */
export function networkFilter(arch: string): Uint8Array<ArrayBuffer> | null {
  const nr = SYSCALLS[arch];
  const audit = AUDIT_ARCH[arch];
  if (nr === undefined || audit === undefined) return null;
  const deny = "deny";
  const allow = "allow";
  return assemble([
    { code: BPF_LD_W_ABS, k: ARCH },
    { code: BPF_JEQ_K, k: audit, jf: deny },
    { code: BPF_LD_W_ABS, k: NR },
    ...(arch === "x86_64" ? [{ code: BPF_JSET_K, k: X32_BIT, jt: deny }] : []),
    { code: BPF_JEQ_K, k: nr.connect, jt: deny },
    { code: BPF_JEQ_K, k: nr.io_uring_setup, jt: deny },
    { code: BPF_JEQ_K, k: nr.socket, jt: "domain" },
    { code: BPF_JEQ_K, k: nr.socketpair, jt: "domain" },
    { code: BPF_JEQ_K, k: nr.sendto, jt: "address", jf: allow },
    { label: "domain" },
    { code: BPF_LD_W_ABS, k: arg(0) },
    { code: BPF_JEQ_K, k: AF_UNIX, jt: allow, jf: deny },
    { label: "address" },
    // sendto(fd, buf, len, flags, dest_addr, addrlen): only without an address.
    { code: BPF_LD_W_ABS, k: arg(4) },
    { code: BPF_JEQ_K, k: 0, jf: deny },
    { code: BPF_LD_W_ABS, k: arg(4, true) },
    { code: BPF_JEQ_K, k: 0, jt: allow, jf: deny },
    { label: allow },
    { code: BPF_RET_K, k: RET_ALLOW },
    { label: deny },
    { code: BPF_RET_K, k: RET_EPERM },
  ]);
}

let written: Promise<string> | null = null;

/**
 * The file holding this host's filter, written on first use; rejects when
 * the architecture has none or the file cannot be written.
 */
export function networkFilterFile(): Promise<string> {
  written ??= (async () => {
    const filter = networkFilter(Deno.build.arch);
    if (filter === null) {
      throw new Error(`no seccomp network filter for the ${Deno.build.arch} architecture`);
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", filter));
    const name = `${Deno.build.arch}-${digest.subarray(0, 8).toHex()}.bpf`;
    const dir = `${stateDirectory()}/seccomp`;
    const path = `${dir}/${name}`;
    const current = await Deno.readFile(path).catch(() => null);
    if (current !== null && current.toHex() === filter.toHex()) {
      return path;
    }
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const temporary = `${path}.${crypto.randomUUID()}`;
    await Deno.writeFile(temporary, filter, { mode: 0o600 });
    await Deno.rename(temporary, path);
    return path;
  })();
  written.catch(() => written = null);
  return written;
}
