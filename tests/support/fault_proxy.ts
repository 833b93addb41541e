/**
 * A loopback TCP proxy that injects network faults, for tests of what a
 * client does when the link to its executor goes bad: a dead link
 * (`blackhole()`), reset connections (`reset()`), an executor that is gone
 * (`refuse()`), and latency (`delay()`). It forwards bytes and knows nothing
 * of HTTP or WebSocket, so an upgraded WebSocket connection works through it.
 *
 * What the peers (the client and the target) observe:
 *
 * - **reset**: the proxy closes both of its sockets without a shutdown. Deno
 *   has no `SO_LINGER`, so the kernel sends an RST only when the closed socket
 *   still had unread bytes; otherwise it sends a FIN. A peer therefore reads
 *   EOF (or gets ECONNRESET), and its next writes fail with ECONNRESET or
 *   EPIPE once the RST for them comes back.
 * - **blackhole**: nothing: no bytes, no FIN, no RST, in either direction.
 *   Writes succeed (the proxy reads and drops them) and reads never return.
 *   New connections are accepted but never reach the target. A connection
 *   that was blackholed stays dead: `restore()` resets it.
 * - **refuse**: the listener is closed, so a new connection fails with
 *   ECONNREFUSED (`Deno.errors.ConnectionRefused`), as when the executor's
 *   process is gone; every current connection is reset. Await `refuse()`: a
 *   connection attempted before it resolves may get ECONNRESET instead.
 *   `restore()` listens on the same port again.
 *
 * A connection whose target cannot be reached is closed at once (the client
 * sees its connect succeed, then EOF or ECONNRESET).
 */

/** Where the proxy forwards to. */
export interface FaultProxyTarget {
  hostname: string;
  port: number;
}

/** Options of `startFaultProxy()`. */
export interface FaultProxyOptions {
  /** The target, or a function asked on every new connection (for a target that moves). */
  target: FaultProxyTarget | (() => FaultProxyTarget);
  /**
   * The port to listen on, on 127.0.0.1. The default, 0, picks an ephemeral
   * port; a fixed port lets a test restart the proxy on the same address.
   */
  listenPort?: number;
}

/** What the proxy does with connections. */
export type FaultProxyMode = "forward" | "blackhole" | "refuse";

/** A running fault proxy. */
export interface FaultProxy extends AsyncDisposable {
  /** The port it listens on (the same one after `refuse()` and `restore()`). */
  readonly port: number;
  /** The address it listens on. */
  readonly hostname: "127.0.0.1";
  /** The proxy's URL, e.g. `ws://127.0.0.1:PORT/`. */
  url(scheme?: "ws" | "http", path?: string): string;
  /** Forwarding state. */
  readonly mode: FaultProxyMode;
  /** Added latency per chunk in milliseconds (0 = none). */
  readonly delayMs: number;
  /**
   * Accepts connections and forwards nothing in either direction, on existing
   * and new connections: bytes are dropped (never delivered later), like a dead
   * link or a half-open TCP connection. Neither side gets a FIN or an RST.
   * Throws while refusing (call `restore()` first).
   */
  blackhole(): void;
  /** Resets every current connection (see the module doc) and keeps accepting new ones. */
  reset(): void;
  /**
   * Closes the listener (new connections get ECONNREFUSED) and resets every
   * current connection. Resolves once the port refuses connections: Deno
   * closes a listening socket only after its pending accept was cancelled, so
   * a connection attempted before that gets ECONNRESET instead.
   */
  refuse(): Promise<void>;
  /**
   * Adds `ms` of latency to every chunk in both directions (0 = none), keeping
   * the order; it applies to chunks read from now on.
   */
  delay(ms: number): void;
  /**
   * Back to plain forwarding without delay. Connections that were blackholed
   * stay dead (their bytes were dropped, so resuming them would corrupt the
   * stream): they are reset so that the peers notice. After `refuse()` it
   * listens on the same port again; it resolves once it forwards (until then
   * `mode` stays "refuse"), and rejects when the port cannot be listened on
   * again. Its effect is otherwise immediate.
   */
  restore(): Promise<void>;
  /** Number of currently open proxied connections. */
  readonly connections: number;
  /** Number of connections accepted so far. */
  readonly accepted: number;
  /**
   * Resolves when `accepted` reaches `n` (at once when it already has).
   * Rejects when the proxy is closed first.
   */
  waitForAccepted(n: number): Promise<void>;
  /** Stops listening and closes every connection; idempotent. */
  close(): Promise<void>;
}

/** Starts a fault proxy on 127.0.0.1, in `forward` mode. */
export function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  return Promise.resolve(new FaultProxyServer(options));
}

/** Bytes read per chunk. */
const CHUNK_SIZE = 64 * 1024;
/** Queued bytes per direction above which the proxy stops reading (backpressure). */
const HIGH_WATER = 1024 * 1024;

/** The proxy: one listener and the links it accepted. */
class FaultProxyServer implements FaultProxy {
  readonly hostname = "127.0.0.1" as const;
  readonly port: number;
  #target: FaultProxyOptions["target"];
  #listener: Deno.TcpListener | null;
  #acceptLoop: Promise<void>;
  #mode: FaultProxyMode = "forward";
  #delayMs = 0;
  #accepted = 0;
  /** Counts refuse() calls, so that a restore() that waited knows it was overtaken. */
  #refusals = 0;
  #links = new Set<Link>();
  #tasks = new Set<Promise<void>>();
  #waiters: { n: number; resolve(): void; reject(error: Error): void }[] = [];
  #closing: Promise<void> | null = null;

  constructor(options: FaultProxyOptions) {
    this.#target = options.target;
    this.#listener = Deno.listen({ hostname: this.hostname, port: options.listenPort ?? 0 });
    this.port = this.#listener.addr.port;
    this.#acceptLoop = this.#accept(this.#listener);
  }

  get mode(): FaultProxyMode {
    return this.#mode;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  get connections(): number {
    return this.#links.size;
  }

  get accepted(): number {
    return this.#accepted;
  }

  url(scheme: "ws" | "http" = "ws", path = "/"): string {
    return `${scheme}://${this.hostname}:${this.port}${path.startsWith("/") ? "" : "/"}${path}`;
  }

  blackhole(): void {
    this.#assertOpen();
    if (this.#listener === null) {
      throw new Error("fault proxy refuses connections: restore() first");
    }
    this.#mode = "blackhole";
    for (const link of this.#links) link.kill();
  }

  reset(): void {
    this.#assertOpen();
    for (const link of this.#links) link.reset();
  }

  refuse(): Promise<void> {
    this.#assertOpen();
    this.#mode = "refuse";
    this.#refusals++;
    this.#listener?.close();
    this.#listener = null;
    for (const link of this.#links) link.reset();
    // The socket closes once its pending accept has been cancelled, which ends the accept loop.
    return this.#acceptLoop;
  }

  delay(ms: number): void {
    this.#assertOpen();
    if (!(ms >= 0)) throw new RangeError(`delay must be >= 0, got ${ms}`);
    this.#delayMs = ms;
  }

  async restore(): Promise<void> {
    this.#assertOpen();
    this.#delayMs = 0;
    for (const link of this.#links) if (link.dead) link.reset();
    if (this.#listener !== null) {
      this.#mode = "forward";
      return;
    }
    const refusals = this.#refusals;
    await this.#acceptLoop; // the old listening socket is closed for real
    if (this.#closing !== null || this.#refusals !== refusals || this.#listener !== null) return;
    const listener = Deno.listen({ hostname: this.hostname, port: this.port });
    this.#listener = listener;
    this.#acceptLoop = this.#accept(listener);
    this.#mode = "forward";
  }

  waitForAccepted(n: number): Promise<void> {
    if (this.#accepted >= n) return Promise.resolve();
    if (this.#closing !== null) return Promise.reject(new Error("fault proxy is closed"));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#waiters.push({ n, resolve, reject });
    return promise;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    await this.#acceptLoop;
    for (const link of this.#links) link.reset();
    await Promise.all(this.#tasks);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new Error("fault proxy closed"));
  }

  #assertOpen(): void {
    if (this.#closing !== null) throw new Error("fault proxy is closed");
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (true) {
      let client: Deno.TcpConn;
      try {
        client = await listener.accept();
      } catch {
        return; // the listener was closed (refuse() or close())
      }
      this.#accepted++;
      this.#waiters = this.#waiters.filter((waiter) => {
        if (this.#accepted < waiter.n) return true;
        waiter.resolve();
        return false;
      });
      const task = this.#serve(client);
      this.#tasks.add(task);
      task.then(() => this.#tasks.delete(task));
    }
  }

  /** Connects one accepted client to the target and pumps until both are closed; never rejects. */
  async #serve(client: Deno.TcpConn): Promise<void> {
    const link = new Link(this, client);
    this.#links.add(link);
    try {
      if (this.#mode === "blackhole") link.kill();
      // refuse() or close() closed the listener after this connection was accepted.
      else if (this.#mode === "refuse" || this.#closing !== null) link.reset();
      if (!link.closed && !link.dead) {
        let target: Deno.TcpConn | null = null;
        try {
          const to = typeof this.#target === "function" ? this.#target() : this.#target;
          target = await Deno.connect({ hostname: to.hostname, port: to.port });
        } catch {
          link.reset(); // the target is gone: the client sees its connection end
        }
        if (target !== null) link.attach(target);
      }
      await link.run();
    } finally {
      this.#links.delete(link);
    }
  }
}

/** One proxied connection: a client socket and, once connected, its target socket. */
class Link {
  /** Closed by reset (or at the natural end): no more reads or writes. */
  closed = false;
  /** Blackholed: every byte is dropped, for good. */
  dead = false;
  readonly proxy: { readonly delayMs: number };
  #client: Deno.TcpConn;
  #target: Deno.TcpConn | null = null;
  #pipes: Pipe[] = [];
  #ended = 0;
  #timers = new Map<ReturnType<typeof setTimeout>, () => void>();
  #untilClosed = Promise.withResolvers<void>();

  constructor(proxy: { readonly delayMs: number }, client: Deno.TcpConn) {
    this.proxy = proxy;
    this.#client = client;
    noDelay(client);
  }

  /** Takes the target socket, or closes it when the link was reset while connecting. */
  attach(target: Deno.TcpConn): void {
    if (this.closed) {
      target.close();
      return;
    }
    noDelay(target);
    this.#target = target;
  }

  /** Pumps both directions until the link is closed. */
  async run(): Promise<void> {
    if (this.closed) return;
    this.#pipes = [
      new Pipe(this, this.#client, this.#target),
      ...(this.#target === null ? [] : [new Pipe(this, this.#target, this.#client)]),
    ];
    await Promise.all(this.#pipes.map((pipe) => pipe.done));
    // A dead link stays open after its pipes end: a dead link tells nobody anything.
    // Only reset() ends it, and run() must wait for that so the sockets get closed.
    if (!this.closed) await this.#untilClosed.promise;
  }

  /** Blackholes this link: its queued and future bytes are dropped, EOFs are not passed on. */
  kill(): void {
    if (this.dead || this.closed) return;
    this.dead = true;
    for (const pipe of this.#pipes) pipe.drop();
  }

  /** Closes both sockets at once, without a shutdown, and cancels every wait. */
  reset(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [id, resolve] of this.#timers) {
      clearTimeout(id);
      resolve();
    }
    this.#timers.clear();
    for (const conn of [this.#client, this.#target]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
    for (const pipe of this.#pipes) pipe.wake();
    this.#untilClosed.resolve();
  }

  /** A pipe saw its EOF through: when both have (and the link is alive), the link is done. */
  ended(): void {
    this.#ended++;
    if (this.#ended === this.#pipes.length && !this.dead) this.reset();
  }

  /** Waits `ms`, or until the link is reset. */
  sleep(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const id = setTimeout(() => {
      this.#timers.delete(id);
      resolve();
    }, ms);
    this.#timers.set(id, resolve);
    return promise;
  }
}

/** One direction of a link: a read loop that queues chunks and a write loop that delivers them. */
class Pipe {
  readonly done: Promise<void>;
  #link: Link;
  #from: Deno.TcpConn;
  #to: Deno.TcpConn | null;
  #queue: { bytes: Uint8Array; due: number }[] = [];
  #queued = 0;
  #eof = false;
  #wakeReader: (() => void) | null = null;
  #wakeWriter: (() => void) | null = null;

  constructor(link: Link, from: Deno.TcpConn, to: Deno.TcpConn | null) {
    this.#link = link;
    this.#from = from;
    this.#to = to;
    this.done = Promise.all([this.#read(), this.#write()]).then(() => {});
  }

  /** Drops everything queued (the link was blackholed). */
  drop(): void {
    this.#queue = [];
    this.#queued = 0;
    this.wake();
  }

  /** Wakes both loops so they look at the link's state again. */
  wake(): void {
    this.#wakeReader?.();
    this.#wakeWriter?.();
  }

  async #read(): Promise<void> {
    const link = this.#link;
    const buffer = new Uint8Array(CHUNK_SIZE);
    while (!link.closed) {
      let n: number | null;
      try {
        n = await this.#from.read(buffer);
      } catch {
        // Reset by the peer (or closed by us): a live link passes the reset on.
        if (!link.dead) link.reset();
        break;
      }
      if (n === null) break;
      if (link.dead || link.closed || this.#to === null) continue;
      this.#queue.push({ bytes: buffer.slice(0, n), due: performance.now() + link.proxy.delayMs });
      this.#queued += n;
      this.#wakeWriter?.();
      while (this.#queued > HIGH_WATER && !link.closed && !link.dead) {
        await new Promise<void>((resolve) => this.#wakeReader = resolve);
        this.#wakeReader = null;
      }
    }
    this.#eof = true;
    this.#wakeWriter?.();
  }

  async #write(): Promise<void> {
    const link = this.#link;
    while (!link.closed) {
      const item = this.#queue.shift();
      if (item === undefined) {
        if (this.#eof) {
          if (!link.dead && this.#to !== null) {
            try {
              await this.#to.closeWrite();
            } catch {
              // the other side is gone too
            }
          }
          link.ended();
          return;
        }
        await new Promise<void>((resolve) => this.#wakeWriter = resolve);
        this.#wakeWriter = null;
        continue;
      }
      this.#queued -= item.bytes.byteLength;
      this.#wakeReader?.();
      // Timers may round down; never deliver a chunk before it is due.
      for (let wait = item.due - performance.now(); wait > 0 && !link.closed;) {
        await link.sleep(Math.ceil(wait));
        wait = item.due - performance.now();
      }
      if (link.closed || link.dead || this.#to === null) continue;
      try {
        let offset = 0;
        while (offset < item.bytes.byteLength) {
          offset += await this.#to.write(item.bytes.subarray(offset));
        }
      } catch {
        if (!link.dead) link.reset();
      }
    }
  }
}

/** Turns Nagle off so that small chunks (WebSocket frames) are not held back; best effort. */
function noDelay(conn: Deno.TcpConn): void {
  try {
    conn.setNoDelay(true);
  } catch {
    // the peer is gone already; the first read or write will say so
  }
}
