/**
 * The glibc functions and Linux constants the pseudo-terminal code calls
 * through Deno FFI (`pty.ts`), and the small helpers around them. The
 * library is open only while a pseudo-terminal is alive.
 *
 * @module
 */

// Linux constants (identical on x86_64 and aarch64).

/** Linux `O_RDWR`. */
export const O_RDWR = 0o2;
/** Linux `O_NOCTTY`. */
export const O_NOCTTY = 0o400;
/** Linux `O_NONBLOCK`. */
export const O_NONBLOCK = 0o4000;
/** Linux `O_CLOEXEC`. */
export const O_CLOEXEC = 0o2000000;
const TIOCSWINSZ = 0x5414;
/** Linux `POLLIN`. */
export const POLLIN = 0x1;
/** Linux `POLLOUT`. */
export const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
/** `poll` revents meaning the fd is done (error, hang-up, invalid). */
export const POLL_END = POLLERR | POLLHUP | POLLNVAL;
/** Linux `F_OK`. */
export const F_OK = 0;
const X_OK = 1;
/** Linux `SIGKILL`. */
export const SIGKILL = 9;
/** Linux `EINTR`. */
export const EINTR = 4;
/** Linux `EAGAIN`. */
export const EAGAIN = 11;
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  28: "ENOSPC",
};

const SYMBOLS = {
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  access: { parameters: ["buffer", "i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The bound functions. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// One library per isolate (module instance), open while a PTY is alive, so
// that no dynamic-library resource outlives the last PTY.
let library: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
let libraryUsers = 0;
let errnoView: Deno.UnsafePointerView | null = null;

/** Opens libc (once per worker) and counts a user; throws a clear error where it cannot. */
export function acquireLibc(): Libc {
  if (library === null) {
    try {
      library = Deno.dlopen("libc.so.6", SYMBOLS);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) throw e;
      throw new Error(`spawnPty: cannot load libc.so.6 with Deno.dlopen (glibc Linux only)`, {
        cause: e,
      });
    }
    const pointer = library.symbols.__errno_location();
    errnoView = pointer === null ? null : new Deno.UnsafePointerView(pointer);
  }
  libraryUsers++;
  return library.symbols;
}

/** A user is done: the last one closes the library. */
export function releaseLibc(): void {
  if (--libraryUsers === 0 && library !== null) {
    library.close();
    library = null;
    errnoView = null;
  }
}

/** errno of this thread; read right after the failed synchronous call. */
export function errno(): number {
  return errnoView === null ? 0 : errnoView.getInt32();
}

/** The symbolic name of an errno value. */
export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 string for C. */
export function cString(text: string): Uint8Array {
  return encoder.encode(text + "\0");
}

/** The first of `candidates` that is executable, or null. */
export function findExecutable(libc: Libc, candidates: string[]): string | null {
  return candidates.find((path) => libc.access(cString(path), X_OK) === 0) ?? null;
}

/** Throws unless rows and columns fit a `winsize`. */
export function checkSize(rows: number, cols: number): void {
  for (const [name, value] of [["rows", rows], ["cols", cols]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 0xffff) {
      throw new RangeError(`pty ${name} must be an integer from 1 to 65535, got ${value}`);
    }
  }
}

/** Sets a terminal's size (`TIOCSWINSZ`). */
export function setWindowSize(libc: Libc, fd: number, rows: number, cols: number): void {
  const winsize = new Uint16Array([rows, cols, 0, 0]);
  if (libc.ioctl(fd, BigInt(TIOCSWINSZ), new Uint8Array(winsize.buffer)) !== 0) {
    throw new Error(`pty resize failed: ioctl(TIOCSWINSZ): ${errnoName(errno())}`);
  }
}
