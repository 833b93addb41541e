/**
 * A recording WebSocket proxy: listens on 127.0.0.1:0, and for every
 * connection opens one to an upstream executor (with the client's
 * `Authorization` header, or a bearer token of its own), forwards every
 * message both ways and records it with a timestamp. Tests read exactly what
 * Codex sent and what the executor answered.
 *
 * The upstream connection is opened before the client's upgrade is
 * accepted: when the executor refuses it (401, 403…), the client is refused
 * too (502, with the reason in the body and in {@link WsLogger.events}).
 *
 * @module
 */

/** One recorded message. */
export interface Frame {
  /** The connection (1, 2, … in the order they were opened). */
  conn: number;
  /** `c2s`: client (Codex) to executor; `s2c`: executor to client. */
  dir: "c2s" | "s2c";
  /** ms since the logger started. */
  t: number;
  /** The text (binary messages as `base64:…`). */
  text: string;
  /** The parsed JSON message, or null. */
  json: Record<string, unknown> | null;
}

/** A connection event (open, refused, close). */
export interface ConnectionEvent {
  conn: number;
  t: number;
  what: string;
}

/** A request the client sent, with the answer it got (if any). */
export interface Exchange {
  conn: number;
  id: unknown;
  method: string;
  params: unknown;
  /** When the request was sent. */
  t: number;
  /** The response message, or null while none came. */
  response: Record<string, unknown> | null;
  /** The error object of the response, if it is one. */
  error: { code: number; message: string } | null;
}

interface Waiter {
  predicate: () => boolean;
  resolve: () => void;
}

/** Options of {@link WsLogger.start}. */
export interface WsLoggerOptions {
  /** The executor's URL (`ws://…`). */
  upstream: string;
  /** A token to send upstream as `Authorization: Bearer …` (else the client's header is passed on). */
  token?: string;
}

/** The proxy. */
export class WsLogger {
  /** `ws://127.0.0.1:PORT`, for Codex's environments.toml. */
  readonly url: string;
  /** Every message, in the order the proxy saw them. */
  readonly frames: Frame[] = [];
  /** Connection events. */
  readonly events: ConnectionEvent[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #options: WsLoggerOptions;
  readonly #started = performance.now();
  readonly #sockets = new Set<WebSocket>();
  #connections = 0;
  #waiters: Waiter[] = [];
  /** Authorization headers seen on the client's upgrades (redacted to their scheme). */
  readonly authorizations: string[] = [];

  private constructor(options: WsLoggerOptions) {
    this.#options = options;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.url = `ws://127.0.0.1:${this.#server.addr.port}`;
  }

  /** Starts a proxy to `options.upstream`. */
  static start(options: WsLoggerOptions): WsLogger {
    return new WsLogger(options);
  }

  #now(): number {
    return Math.round((performance.now() - this.#started) * 10) / 10;
  }

  /** ms since the logger started (the clock of {@link Frame.t}). */
  elapsed(): number {
    return this.#now();
  }

  #event(conn: number, what: string): void {
    this.events.push({ conn, t: this.#now(), what });
    this.#notify();
  }

  #record(conn: number, dir: "c2s" | "s2c", data: unknown): void {
    let text: string;
    if (typeof data === "string") text = data;
    else if (data instanceof ArrayBuffer) text = `base64:${new Uint8Array(data).toBase64()}`;
    else text = String(data);
    let json: Record<string, unknown> | null = null;
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) json = parsed;
    } catch {
      // Not JSON.
    }
    this.frames.push({ conn, dir, t: this.#now(), text, json });
    this.#notify();
  }

  #notify(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.predicate()) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  /** Resolves once `predicate` holds (checked after every frame and event). */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  async #handle(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("the interop logger only proxies WebSocket upgrades", { status: 404 });
    }
    const conn = ++this.#connections;
    const incoming = request.headers.get("authorization");
    this.authorizations.push(incoming === null ? "(none)" : incoming.split(" ")[0] + " …");
    const authorization = this.#options.token !== undefined
      ? `Bearer ${this.#options.token}`
      : incoming;
    const path = new URL(request.url);
    const target = new URL(this.#options.upstream);
    target.pathname = path.pathname;
    target.search = path.search;
    let upstream: WebSocket;
    try {
      upstream = await this.#openUpstream(target.href, authorization);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#event(conn, `refused: upstream: ${reason}`);
      return new Response(`upstream refused: ${reason}`, { status: 502 });
    }
    this.#event(conn, `open (client authorization: ${this.authorizations.at(-1)})`);
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    upstream.binaryType = "arraybuffer";
    this.#sockets.add(socket);
    this.#sockets.add(upstream);
    const pendingToClient: (string | ArrayBuffer)[] = [];
    socket.onopen = () => {
      for (const data of pendingToClient.splice(0)) socket.send(data);
    };
    upstream.onmessage = (event) => {
      this.#record(conn, "s2c", event.data);
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
      else if (socket.readyState === WebSocket.CONNECTING) pendingToClient.push(event.data);
    };
    socket.onmessage = (event) => {
      this.#record(conn, "c2s", event.data);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(event.data);
    };
    const closeBoth = (side: string, event: CloseEvent | Event) => {
      const code = event instanceof CloseEvent ? ` ${event.code} ${event.reason}`.trimEnd() : "";
      this.#event(conn, `closed by ${side}${code}`);
      for (const ws of [socket, upstream]) {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
          try {
            ws.close();
          } catch {
            // Already closing.
          }
        }
      }
    };
    socket.onclose = (event) => {
      this.#sockets.delete(socket);
      closeBoth("client", event);
    };
    upstream.onclose = (event) => {
      this.#sockets.delete(upstream);
      closeBoth("executor", event);
    };
    socket.onerror = () => {};
    upstream.onerror = () => {};
    return response;
  }

  #openUpstream(url: string, authorization: string | null): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (authorization !== null) headers.authorization = authorization;
      // Deno's WebSocket takes request headers as a second-argument option.
      const ws = new (WebSocket as unknown as new (
        url: string,
        options: { headers: Record<string, string> },
      ) => WebSocket)(url, { headers });
      const timer = setTimeout(() => {
        ws.onopen = ws.onerror = ws.onclose = null;
        try {
          ws.close();
        } catch {
          // Not open.
        }
        reject(new Error("upstream connect timed out after 10 s"));
      }, 10_000);
      ws.onopen = () => {
        clearTimeout(timer);
        ws.onerror = ws.onclose = null;
        resolve(ws);
      };
      ws.onerror = (event) => {
        clearTimeout(timer);
        ws.onopen = ws.onclose = null;
        reject(new Error((event as ErrorEvent).message ?? "upstream connection failed"));
      };
    });
  }

  /** The client's requests with their answers, in the order they were sent. */
  exchanges(): Exchange[] {
    const result: Exchange[] = [];
    const open = new Map<string, Exchange>();
    for (const frame of this.frames) {
      const m = frame.json;
      if (m === null) continue;
      if (frame.dir === "c2s" && typeof m.method === "string" && m.id !== undefined) {
        const exchange: Exchange = {
          conn: frame.conn,
          id: m.id,
          method: m.method,
          params: m.params,
          t: frame.t,
          response: null,
          error: null,
        };
        result.push(exchange);
        open.set(`${frame.conn}:${JSON.stringify(m.id)}`, exchange);
      } else if (frame.dir === "s2c" && m.method === undefined && m.id !== undefined) {
        const key = `${frame.conn}:${JSON.stringify(m.id)}`;
        const exchange = open.get(key);
        if (exchange === undefined) continue;
        open.delete(key);
        exchange.response = m;
        const error = m.error as { code?: number; message?: string } | undefined;
        if (error !== undefined) {
          exchange.error = { code: Number(error.code), message: String(error.message) };
        }
      }
    }
    return result;
  }

  /** The client's notifications (no id), e.g. `initialized`. */
  clientNotifications(): Frame[] {
    return this.frames.filter((f) =>
      f.dir === "c2s" && f.json !== null && f.json.id === undefined &&
      typeof f.json.method === "string"
    );
  }

  /** The executor's notifications (`process/output`, …). */
  serverNotifications(): Frame[] {
    return this.frames.filter((f) =>
      f.dir === "s2c" && f.json !== null && f.json.id === undefined &&
      typeof f.json.method === "string"
    );
  }

  /** The methods the client called, in order (with repeats). */
  methods(): string[] {
    return this.exchanges().map((e) => e.method);
  }

  /** The first request that got an error answer, or null. */
  firstError(): Exchange | null {
    return this.exchanges().find((e) => e.error !== null) ?? null;
  }

  /** Requests that were never answered (while the connection was open). */
  unanswered(): Exchange[] {
    return this.exchanges().filter((e) => e.response === null);
  }

  /** A short text of every frame (for failure messages and capture files). */
  transcript(maxChars = 400): string {
    return this.frames.map((f) => {
      const text = f.text.length > maxChars ? `${f.text.slice(0, maxChars)}…` : f.text;
      return `[${f.conn}] ${f.t.toFixed(1).padStart(8)} ${f.dir === "c2s" ? "->" : "<-"} ${text}`;
    }).join("\n");
  }

  /** Stops listening and closes every proxied connection. */
  async close(): Promise<void> {
    for (const ws of this.#sockets) {
      try {
        ws.close();
      } catch {
        // Already closed.
      }
    }
    this.#sockets.clear();
    await this.#server.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
