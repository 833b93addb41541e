/**
 * Pseudo-terminal processes for `tty: true`, built on Deno FFI over glibc
 * (Linux only; no native addon). See `docs/pty.md` for the design.
 *
 * The master side is opened here (`posix_openpt`, `grantpt`, `unlockpt`,
 * `ptsname_r`). The child is `/bin/sh`, which opens the slave on fds 0–2 and
 * execs util-linux `setsid -c`; that makes the child a session and process
 * group leader (pid == sid == pgid) with the pty as controlling terminal, then
 * execs the program in the same process.
 *
 * The master fd is non-blocking. Output is read synchronously while data is
 * there and waits with a `nonblocking` FFI `poll` (on a blocking thread)
 * otherwise; an eventfd wakes pending polls on `close()`, so no op outlives a
 * closed PTY. Input that the terminal cannot take at once is queued and
 * flushed the same way, so `write()` never blocks the thread.
 *
 * Loaded lazily by a worker (`await import`) only when a tty is requested, with
 * the libc bindings it uses (`libc.ts`).
 *
 * Long (~500 lines) on purpose: the libc bindings, the spawn and the I/O loop
 * of a pseudo-terminal are one unit that only works together.
 *
 * @module
 */

import {
  acquireLibc,
  checkSize,
  cString,
  EAGAIN,
  EINTR,
  errno,
  errnoName,
  F_OK,
  findExecutable,
  type Libc,
  O_CLOEXEC,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDWR,
  POLL_END,
  POLLIN,
  POLLOUT,
  releaseLibc,
  setWindowSize,
  SIGKILL,
} from "./libc.ts";

/** Options of {@linkcode spawnPty}. */
export interface PtySpawnOptions {
  /** Program and arguments; `argv[0]` is looked up on the `PATH` of `env`. */
  argv: string[];
  /** Working directory; defaults to the current one. */
  cwd?: string;
  /** The child's whole environment (nothing else is inherited or added). */
  env: Record<string, string>;
  /** Terminal rows (default 24). */
  rows?: number;
  /** Terminal columns (default 80). */
  cols?: number;
  /** `argv[0]` as seen by the program (needs `perl`; see docs/pty.md). */
  arg0?: string | null;
}

/** A process running under a pseudo-terminal. */
export interface PtyProcess {
  /** The child's pid, also its session id and process group id. */
  readonly pid: number;
  /** Output from the terminal, chunk by chunk; ends when the slave side is closed by everyone (EIO). */
  readonly output: ReadableStream<Uint8Array>;
  /** Writes bytes to the terminal (the child's stdin). Throws a clear error after close. */
  write(data: Uint8Array): void;
  /** Sets the terminal size (the foreground process group gets SIGWINCH). No-op after close. */
  resize(rows: number, cols: number): void;
  /** Resolves when the child exits. */
  readonly status: Promise<{ code: number; signal: string | null }>;
  /** Kills the whole process group with SIGKILL. Safe to call more than once, and after exit. */
  kill(): void;
  /** Releases the master fd once output has ended (call after status resolved and output drained). */
  close(): void;
  /**
   * Resolves once the fds are closed and no FFI call is pending. That happens
   * by itself when output has ended and the child has exited, or after
   * `close()`; when `close()` had to wake a pending read or write, it is one
   * event-loop turn later (await this before a test ends).
   */
  readonly released: Promise<void>;
}

/** Largest chunk read from the master at once. */
const CHUNK_SIZE = 64 * 1024;
const CHUNK_SIZE_N = BigInt(CHUNK_SIZE);
/** Reads done back to back before going through `poll` again (which yields to the event loop). */
const SYNC_READ_BUDGET = 32;
/** Input queued while the terminal is full; a `write()` past this throws. */
const MAX_QUEUED_INPUT = 16 * 1024 * 1024;

/**
 * The child: `$0` is the slave path, `$1` whether `PWD` was in the requested
 * env and `$2` its value (dash would otherwise add or rewrite `PWD`), then the
 * command to exec with fds 0–2 on the slave. Nothing else touches the env.
 */
const SH_SCRIPT = 'if [ "$1" = 1 ]; then PWD=$2; export PWD; else unset PWD; fi; shift 2; ' +
  'exec "$@" <>"$0" >&0 2>&0';

/**
 * Only used for `arg0`: sh has no `exec -a` and bash's adds `PWD`/`SHLVL` to
 * the env, so perl execs the program (same pid). `PERL_BADLANG=0` silences
 * perl's locale warning and is restored to the requested value here.
 */
const PERL_EXEC = "my ($h, $v, $p, @a) = @ARGV; " +
  "if ($h) { $ENV{PERL_BADLANG} = $v } else { delete $ENV{PERL_BADLANG} } " +
  "exec { $p } @a or do { " +
  'print STDERR "execbridge: failed to execute $p: $!\\n"; exit($! == 2 ? 127 : 126) }';

const SH_PATH = "/bin/sh";
const SETSID_PATHS = ["/usr/bin/setsid", "/bin/setsid"];
const PERL_PATHS = ["/usr/bin/perl", "/bin/perl", "/usr/local/bin/perl"];

/**
 * Starts `options.argv` under a new pseudo-terminal.
 *
 * Needs `--allow-ffi` and `--allow-run=/bin/sh` (group kills go through libc).
 * A program that cannot be executed shows as exit code 127 (not found) or 126,
 * with the reason in the output; a missing `cwd` throws.
 *
 * @example
 * ```ts
 * import { spawnPty } from "./pty.ts";
 * const pty = spawnPty({ argv: ["stty", "size"], env: { PATH: "/usr/bin:/bin" } });
 * for await (const chunk of pty.output) console.log(new TextDecoder().decode(chunk));
 * console.log(await pty.status); // { code: 0, signal: null }
 * pty.close();
 * ```
 */
export function spawnPty(options: PtySpawnOptions): PtyProcess {
  const { argv, env } = options;
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new TypeError("spawnPty: argv must not be empty");
  }
  const rows = options.rows ?? 24;
  const cols = options.cols ?? 80;
  checkSize(rows, cols);
  if (Deno.build.os !== "linux") {
    throw new Error(`spawnPty: pseudo-terminals are only supported on Linux, not ${Deno.build.os}`);
  }

  const libc = acquireLibc();
  const fds: number[] = [];
  try {
    const master = libc.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0) throw new Error(`spawnPty: posix_openpt failed: ${errnoName(errno())}`);
    fds.push(master);
    if (libc.grantpt(master) !== 0) {
      throw new Error(`spawnPty: grantpt failed: ${errnoName(errno())}`);
    }
    if (libc.unlockpt(master) !== 0) {
      throw new Error(`spawnPty: unlockpt failed: ${errnoName(errno())}`);
    }
    const nameBuffer = new Uint8Array(128);
    const failed = libc.ptsname_r(master, nameBuffer, BigInt(nameBuffer.length));
    if (failed !== 0) throw new Error(`spawnPty: ptsname_r failed: ${errnoName(failed)}`);
    const slavePath = new TextDecoder().decode(nameBuffer.subarray(0, nameBuffer.indexOf(0)));
    setWindowSize(libc, master, rows, cols);

    // Our own slave fd keeps the terminal from hanging up (EIO) until the
    // child has exited, even if the child never got to open it.
    const slave = libc.open(cString(slavePath), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) throw new Error(`spawnPty: cannot open ${slavePath}: ${errnoName(errno())}`);
    fds.push(slave);
    const wake = libc.eventfd(0, O_CLOEXEC | O_NONBLOCK);
    if (wake < 0) throw new Error(`spawnPty: eventfd failed: ${errnoName(errno())}`);
    fds.push(wake);

    const setsid = findExecutable(libc, SETSID_PATHS);
    if (setsid === null) {
      throw new Error(
        `spawnPty: util-linux setsid not found (looked in ${SETSID_PATHS.join(", ")})`,
      );
    }
    const childEnv: Record<string, string> = { ...env };
    let program = argv;
    if (options.arg0 != null && options.arg0 !== argv[0]) {
      const perl = findExecutable(libc, PERL_PATHS);
      if (perl === null) {
        throw new Error(
          `spawnPty: arg0 needs perl, which was not found (looked in ${PERL_PATHS.join(", ")})`,
        );
      }
      const badLang = env.PERL_BADLANG;
      childEnv.PERL_BADLANG = "0";
      program = [
        perl,
        "-e",
        PERL_EXEC,
        "--",
        badLang === undefined ? "0" : "1",
        badLang ?? "",
        argv[0],
        options.arg0,
        ...argv.slice(1),
      ];
    }
    const pwd = env.PWD;
    const args = ["-c", SH_SCRIPT, slavePath, pwd === undefined ? "0" : "1", pwd ?? ""];
    args.push(setsid, "-w", "-c", "--", ...program);

    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(SH_PATH, {
        args,
        cwd: options.cwd,
        env: childEnv,
        clearEnv: true,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (e) {
      if (options.cwd !== undefined && libc.access(cString(options.cwd), F_OK) !== 0) {
        throw new Error(
          `spawnPty: cannot start ${argv[0]}: working directory ${options.cwd} does not exist`,
          { cause: e },
        );
      }
      if (e instanceof Deno.errors.NotCapable) throw e;
      const where = options.cwd === undefined ? "" : ` in ${options.cwd}`;
      throw new Error(`spawnPty: cannot start ${argv[0]}${where}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    return new Pty(libc, child, master, slave, wake);
  } catch (e) {
    for (const fd of fds) libc.close(fd);
    releaseLibc();
    throw e;
  }
}

class Pty implements PtyProcess {
  readonly pid: number;
  readonly output: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;

  #libc: Libc;
  #child: Deno.ChildProcess;
  #master: number;
  #slave: number;
  #wake: number;
  /** close() was called, or everything is over: no more I/O on the fds. */
  #closed = false;
  #released = false;
  #onReleased!: () => void;
  readonly released: Promise<void> = new Promise((resolve) => this.#onReleased = resolve);
  /** Pending `poll` calls; the fds are closed only when this is 0. */
  #inflight = 0;
  #exited = false;
  #outputEnded = false;
  #outputCancelled = false;
  #groupKillMissed = false;
  #reading: Promise<unknown> = Promise.resolve();
  #syncReads = 1;
  #scratch = new Uint8Array(CHUNK_SIZE);
  #readPoll = new ArrayBuffer(16);
  #writePoll = new ArrayBuffer(16);
  #queue: Uint8Array[] = [];
  #queued = 0;
  #flushing = false;

  constructor(libc: Libc, child: Deno.ChildProcess, master: number, slave: number, wake: number) {
    this.#libc = libc;
    this.#child = child;
    this.#master = master;
    this.#slave = slave;
    this.#wake = wake;
    this.pid = child.pid;
    this.status = child.status.then((status) => {
      this.#exited = true;
      this.#closeOwnSlave();
      if (this.#groupKillMissed) this.#killGroup();
      this.#maybeRelease();
      return { code: status.code, signal: status.signal };
    });
    this.output = new ReadableStream<Uint8Array>({
      pull: (controller) => {
        const pulled = this.#readChunk().then((chunk) => {
          if (this.#outputCancelled) return;
          if (chunk === null) {
            controller.close();
            this.#endOutput();
          } else {
            controller.enqueue(chunk);
          }
        });
        this.#reading = pulled;
        return pulled;
      },
      cancel: () => {
        // Keep draining (and dropping) so the child never blocks on a full terminal.
        this.#outputCancelled = true;
        this.#reading = this.#reading.then(async () => {
          while (await this.#readChunk() !== null) { /* drop */ }
          this.#endOutput();
        });
      },
    });
  }

  write(data: Uint8Array): void {
    if (this.#closed) {
      throw new Error(`cannot write to the terminal of process ${this.pid}: it is closed`);
    }
    if (data.byteLength === 0) return;
    if (this.#queued > 0) {
      if (this.#queued + data.byteLength > MAX_QUEUED_INPUT) {
        throw new Error(
          `cannot write to the terminal of process ${this.pid}: ${this.#queued} bytes are ` +
            "still waiting (the program is not reading its input)",
        );
      }
      this.#enqueue(data.slice());
      return;
    }
    const written = this.#writeSome(data);
    if (written < 0) {
      throw new Error(
        `cannot write to the terminal of process ${this.pid}: ${errnoName(-written)}`,
      );
    }
    if (written < data.byteLength) this.#enqueue(data.slice(written));
  }

  resize(rows: number, cols: number): void {
    checkSize(rows, cols);
    if (this.#closed) return;
    setWindowSize(this.#libc, this.#master, rows, cols);
  }

  kill(): void {
    if (!this.#exited) {
      // The pid first: before sh has exec'd setsid there is no group yet, and a
      // process killed there can not fork anymore.
      try {
        this.#child.kill("SIGKILL");
      } catch { /* already exited */ }
    }
    if (!this.#killGroup() && !this.#exited) this.#groupKillMissed = true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    if (this.#inflight > 0) {
      // Wakes every pending poll; the eventfd stays readable until closed.
      const one = new Uint8Array(8);
      one[0] = 1;
      this.#libc.write(this.#wake, one, 8n);
    }
    this.#maybeRelease();
  }

  /**
   * kill(-pid, SIGKILL) through libc: `Deno.kill` would need an unscoped
   * `--allow-run`. The library may have been released already, hence the
   * acquire/release around it.
   */
  #killGroup(): boolean {
    const libc = acquireLibc();
    try {
      return libc.kill(-this.pid, SIGKILL) === 0;
    } finally {
      releaseLibc();
    }
  }

  /** Next chunk of output, or null at the end (EIO) or after close(). */
  async #readChunk(): Promise<Uint8Array | null> {
    let hungUp = false;
    while (!this.#closed) {
      if (this.#syncReads > 0) {
        const n = Number(this.#libc.read(this.#master, this.#scratch, CHUNK_SIZE_N));
        if (n > 0) {
          this.#syncReads--;
          return this.#scratch.slice(0, n);
        }
        if (n === 0) return null;
        const code = errno();
        if (code === EINTR) continue;
        // EIO: every slave fd is closed. Anything else is as final.
        if (code !== EAGAIN || hungUp) return null;
      }
      const revents = await this.#poll(this.#readPoll, POLLIN);
      if (revents === null) return null;
      hungUp = (revents & POLL_END) !== 0;
      this.#syncReads = SYNC_READ_BUDGET;
    }
    return null;
  }

  /** Writes as much as the terminal takes now: bytes written, or -errno on a hard error. */
  #writeSome(data: Uint8Array): number {
    let offset = 0;
    while (offset < data.byteLength) {
      const rest = data.subarray(offset);
      const n = Number(this.#libc.write(this.#master, rest, BigInt(rest.byteLength)));
      if (n > 0) {
        offset += n;
        continue;
      }
      const code = n === 0 ? EAGAIN : errno();
      if (code === EINTR) continue;
      if (code === EAGAIN) break;
      return -code;
    }
    return offset;
  }

  #enqueue(data: Uint8Array): void {
    this.#queue.push(data);
    this.#queued += data.byteLength;
    if (!this.#flushing) this.#flush();
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const revents = await this.#poll(this.#writePoll, POLLOUT);
        if (revents === null) return;
        while (this.#queue.length > 0 && !this.#closed) {
          const head = this.#queue[0];
          const written = this.#writeSome(head);
          if (written < 0) {
            // The terminal is gone; nobody is left to read the input.
            this.#queue = [];
            this.#queued = 0;
            return;
          }
          this.#queued -= written;
          if (written < head.byteLength) {
            this.#queue[0] = head.subarray(written);
            if ((revents & POLL_END) !== 0) {
              this.#queue = [];
              this.#queued = 0;
            }
            break;
          }
          this.#queue.shift();
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Waits on the master (and the wake eventfd): revents of the master, or null after close(). */
  async #poll(buffer: ArrayBuffer, events: number): Promise<number | null> {
    const fds = new Int32Array(buffer);
    const flags = new Int16Array(buffer);
    fds[0] = this.#master;
    flags[2] = events;
    flags[3] = 0;
    fds[2] = this.#wake;
    flags[6] = POLLIN;
    flags[7] = 0;
    this.#inflight++;
    let ready: number;
    try {
      ready = await this.#libc.poll(new Uint8Array(buffer), 2n, -1);
    } finally {
      this.#inflight--;
      this.#maybeRelease();
    }
    if (this.#closed) return null;
    // A failed poll (EINTR) just means "try the fd again".
    return ready < 0 ? 0 : flags[3];
  }

  #endOutput(): void {
    this.#outputEnded = true;
    this.#maybeRelease();
  }

  #closeOwnSlave(): void {
    if (this.#slave >= 0 && !this.#released) {
      this.#libc.close(this.#slave);
      this.#slave = -1;
    }
  }

  /** Closes the fds (and maybe the library) once nothing can use them anymore. */
  #maybeRelease(): void {
    if (this.#released || this.#inflight > 0) return;
    if (!this.#closed && !(this.#outputEnded && this.#exited)) return;
    this.#released = true;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#libc.close(this.#master);
    this.#libc.close(this.#wake);
    if (this.#slave >= 0) this.#libc.close(this.#slave);
    this.#slave = -1;
    releaseLibc();
    this.#onReleased();
  }
}
