/**
 * The child process a worker runs, behind one {@link Child} shape whether it
 * has pipes or a pseudo-terminal, and the pumps that read its output into
 * chunks for the runner (gathering bulk output, reusing buffers).
 *
 * @module
 */

import type { ProcessStream, TerminateSignal } from "../../protocol/types.ts";
import { spawnSession } from "../spawn.ts";
import type { SpawnSpec } from "../worker_protocol.ts";

/** Bytes asked for per read. */
const READ_BYTES = 64 * 1024;
/** A read at least this big means more output is probably waiting. */
const BIG_READ = 16 * 1024;
/** Most bytes gathered into one output chunk. */
const GATHER_BYTES = 1024 * 1024;
/** Read buffers kept between the processes a worker runs (one per pipe). */
const spareBuffers: ArrayBuffer[] = [];
/**
 * Gather buffers the log evicted, for the next bulk chunks: a fresh 1 MiB
 * buffer costs 256 page faults, a recycled one none. Bulk output thus cycles
 * through a few buffers instead of allocating one per MiB.
 */
const spareGathers: ArrayBuffer[] = [];
const MAX_SPARE_GATHERS = 2;

/** A running child: pipes or a pseudo-terminal. */
export interface Child {
  /** Its pid (and process group id). */
  pid: number;
  /** Resolves with how it exited. */
  status: Promise<{ code: number; signal: string | null }>;
  /** Signals its process group (SIGKILL of a terminal also closes it). */
  kill(signal: TerminateSignal): void;
  /** Writes to its stdin (the stream keeps writes in order). */
  write(data: Uint8Array): Promise<void>;
  /** Ends its stdin (for a terminal: sends the EOF character). */
  closeStdin(): void;
  /** Stops reading its output (something outside its group holds it open). */
  cancelOutput(): void;
  /** Releases what remains (the PTY master) once everything ended. */
  dispose(): void;
}

/** Where a child's output goes. */
export interface OutputSink {
  /** One chunk, in a buffer of its own. */
  output(stream: ProcessStream, data: Uint8Array): void;
  /** While this returns a promise, reading waits for it (backpressure). */
  paused(): Promise<void> | null;
  /** An output stream starts being read (called before {@link spawnChild} returns). */
  streamOpened(): void;
  /** An output stream ended: EOF, an error, or cancelled. */
  streamEnded(): void;
}

/** Spawns the child of `spec` (in its own session) and starts reading its output into `sink`. */
export async function spawnChild(spec: SpawnSpec, sink: OutputSink): Promise<Child> {
  return spec.tty ? await spawnPtyChild(spec, sink) : spawnPipeChild(spec, sink);
}

/** A worker going idle drops its spare gather buffers (up to 2 MiB): only a running process reuses them. */
export function releaseSpareBuffers(): void {
  spareGathers.length = 0;
}

/** Keeps an evicted chunk's buffer for reuse when it is a whole gather buffer. */
export function recycleGather(data: Uint8Array): void {
  const buffer = data.buffer as ArrayBuffer;
  if (
    buffer.byteLength === GATHER_BYTES && data.byteOffset === 0 && !buffer.detached &&
    spareGathers.length < MAX_SPARE_GATHERS
  ) {
    spareGathers.push(buffer);
  }
}

function killGroup(pid: number, signal: TerminateSignal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Signals a sandboxed child: SIGKILL to the whole group; any other signal
 * to the group's members but `bwrap`'s own processes, which would die of it
 * (they do not pass signals on) and take the command down with SIGKILL
 * before it could handle the signal (a shell's `trap`).
 */
function signalSandboxed(pgid: number, signal: TerminateSignal): void {
  if (signal === "SIGKILL") {
    killGroup(pgid, signal);
    return;
  }
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      // Fields after the command: state, ppid, pgrp.
      const group = Number(stat.slice(close + 2).split(" ")[2]);
      if (group === pgid && comm !== "bwrap") Deno.kill(pid, signal);
    } catch {
      // Gone meanwhile.
    }
  }
}

/**
 * The command to run: the request's, or, sandboxed, `bwrap` running it
 * (bwrap finds the program on the child's own PATH, inside the sandbox).
 */
function commandOf(spec: SpawnSpec): { argv: string[]; arg0: string | null } {
  if (spec.sandbox === null) return { argv: spec.argv, arg0: spec.arg0 };
  const { program, args } = spec.sandbox;
  const argv0 = spec.arg0 === null ? [] : ["--argv0", spec.arg0];
  return { argv: [program, ...args, ...argv0, "--", ...spec.argv], arg0: null };
}

function spawnPipeChild(spec: SpawnSpec, sink: OutputSink): Child {
  const { argv, arg0 } = commandOf(spec);
  const child = spawnSession(argv, {
    cwd: spec.cwd,
    env: spec.env,
    pipeStdin: spec.pipeStdin,
    arg0,
  });
  const stdin = spec.pipeStdin ? child.stdin.getWriter() : null;
  const readers = [pumpPipe(child.stdout, "stdout", sink), pumpPipe(child.stderr, "stderr", sink)];
  return {
    pid: child.pid,
    status: child.status.then((s) => ({ code: s.code, signal: s.signal })),
    kill: (signal) =>
      spec.sandbox === null ? killGroup(child.pid, signal) : signalSandboxed(child.pid, signal),
    write: (data) => stdin!.write(data),
    closeStdin() {
      stdin?.close().catch(() => {});
    },
    cancelOutput() {
      for (const reader of readers) reader.cancel().catch(() => {});
    },
    dispose() {},
  };
}

async function spawnPtyChild(spec: SpawnSpec, sink: OutputSink): Promise<Child> {
  const { spawnPty } = await import("./pty.ts");
  const { argv, arg0 } = commandOf(spec);
  const pty = spawnPty({ argv, cwd: spec.cwd, env: spec.env, arg0 });
  const reader = pty.output.getReader();
  pumpPty(reader, sink);
  return {
    pid: pty.pid,
    status: pty.status,
    kill(signal) {
      if (signal === "SIGKILL") pty.kill();
      else if (spec.sandbox === null) killGroup(pty.pid, signal);
      else signalSandboxed(pty.pid, signal);
    },
    write: (data) => {
      pty.write(data);
      return Promise.resolve();
    },
    closeStdin() {
      // A terminal has no separate stdin to close: send the EOF character.
      pty.write(new Uint8Array([4]));
    },
    cancelOutput() {
      reader.cancel().catch(() => {});
    },
    dispose: () => pty.close(),
  };
}

/**
 * Reads one pipe until EOF into a reused buffer (a BYOB reader: nothing is
 * allocated per read). A big read means more output is waiting: such reads
 * are gathered (up to 1 MiB) into one chunk, so bulk output costs one event
 * and one message per MiB. A small read, the cap, or 1 ms without another
 * read sends what was gathered, so interactive output is never held back.
 * Returns the reader (to cancel it).
 */
function pumpPipe(
  stream: ReadableStream<Uint8Array>,
  name: ProcessStream,
  sink: OutputSink,
): ReadableStreamBYOBReader {
  sink.streamOpened();
  const reader = stream.getReader({ mode: "byob" });
  let scratch = spareBuffers.pop() ?? new ArrayBuffer(READ_BYTES);
  let gather: Uint8Array | null = null;
  let fill = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (fill === 0 || gather === null) return;
    let chunk: Uint8Array;
    if (fill * 2 >= GATHER_BYTES) {
      // Mostly full: hand the buffer over rather than copy it.
      chunk = gather.subarray(0, fill);
      gather = null;
    } else {
      chunk = gather.slice(0, fill);
    }
    fill = 0;
    sink.output(name, chunk);
  };
  (async () => {
    try {
      while (true) {
        const paused = sink.paused();
        if (paused !== null) {
          flush();
          await paused;
        }
        const { value, done } = await reader.read(new Uint8Array(scratch));
        if (value !== undefined) scratch = value.buffer as ArrayBuffer;
        if (done) break;
        const size = value.byteLength;
        if (fill === 0 && size < BIG_READ) {
          sink.output(name, value.slice());
          continue;
        }
        gather ??= new Uint8Array(spareGathers.pop() ?? new ArrayBuffer(GATHER_BYTES));
        gather.set(value, fill);
        fill += size;
        if (size >= BIG_READ && fill + READ_BYTES <= GATHER_BYTES) {
          timer ??= setTimeout(flush, 1);
        } else {
          flush();
        }
      }
    } catch {
      // A cancelled or broken stream ends like EOF.
    } finally {
      // No releaseLock(): the stream is done, and releasing rejects the reader's `closed` promise
      // with a new TypeError (a stack trace per stream, measured ~15 µs).
      flush();
      // The worker runs one process after another: keep the read buffer for the next one.
      if (!scratch.detached && scratch.byteLength === READ_BYTES && spareBuffers.length < 2) {
        spareBuffers.push(scratch);
      }
    }
    sink.streamEnded();
  })();
  return reader;
}

/** Reads the terminal until EOF, one chunk per read. */
async function pumpPty(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  sink: OutputSink,
): Promise<void> {
  sink.streamOpened();
  try {
    while (true) {
      const paused = sink.paused();
      if (paused !== null) await paused;
      const { value, done } = await reader.read();
      if (done) break;
      if (value.byteLength > 0) sink.output("pty", own(value));
    }
  } catch {
    // A cancelled or broken stream ends like EOF.
  }
  sink.streamEnded();
}

/**
 * Gives each chunk its own exact-size buffer: the read stream hands out views
 * of a 64 KiB buffer, which would otherwise be pinned (and cloned) whole.
 */
function own(data: Uint8Array): Uint8Array {
  return data.byteLength === data.buffer.byteLength ? data : data.slice();
}
