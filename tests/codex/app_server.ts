/**
 * A driver for `codex app-server`: its JSON-RPC (one JSON message per line,
 * no `jsonrpc` field) over the child's stdin/stdout.
 *
 * `AppServer.start()` runs the `initialize` request and the `initialized`
 * notification the protocol requires before anything else; then
 * {@link AppServer.listMcpStatus}, {@link AppServer.startThread},
 * {@link AppServer.callMcpTool} and {@link AppServer.runTurn} (which sends
 * `turn/start` and waits for that turn's `turn/completed`). Every call has a
 * timeout; `close()` stops the whole process group (and everything it
 * started, see processes.ts).
 *
 * Server-to-client requests (approvals, elicitations) are recorded and
 * answered by {@link AppServerOptions.onServerRequest} (by default: approvals
 * are declined, anything else gets -32601), so a run never hangs on one.
 *
 * @module
 */

import { GroupProcess, withTimeout } from "./processes.ts";

/** A message the app-server sent (notification or request), with its arrival time. */
export interface AppMessage {
  /** ms since start. */
  t: number;
  method: string;
  id?: unknown;
  params: Record<string, unknown>;
}

/** An error answer of the app-server. */
export class AppServerError extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(method: string, error: { code: number; message: string; data?: unknown }) {
    super(`${method}: ${error.message} (${error.code})`);
    this.name = "AppServerError";
    this.code = error.code;
    this.data = error.data;
  }
}

/** Options of {@link AppServer.start}. */
export interface AppServerOptions {
  /** The codex binary. */
  codex: string;
  /** The CODEX_HOME directory (config.toml, environments.toml). */
  codexHome: string;
  /** The working directory of the app-server. */
  cwd: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Extra `-c key=value` overrides. */
  configOverrides?: string[];
  /** Default timeout of a request (ms). */
  requestTimeoutMs?: number;
  /** Answers a server-to-client request; return the result, or throw to send an error. */
  onServerRequest?: (message: AppMessage) => unknown;
}

/** What a finished turn produced. */
export interface TurnResult {
  /** The turn's id. */
  turnId: string;
  /** `completed`, `failed`, `interrupted`… */
  status: string;
  /** The turn's error, if any. */
  error: unknown;
  /** Every `item/completed` item of the turn, in order. */
  items: Record<string, unknown>[];
  /** Every notification of the turn, in order. */
  events: AppMessage[];
  /** The final `turn` object of `turn/completed`. */
  turn: Record<string, unknown>;
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

interface Waiter {
  predicate: () => boolean;
  resolve: () => void;
}

function defaultServerRequest(message: AppMessage): unknown {
  if (message.method.endsWith("requestApproval")) return { decision: "decline" };
  if (message.method === "applyPatchApproval" || message.method === "execCommandApproval") {
    return { decision: "denied" };
  }
  throw new Error(`the interop harness does not handle ${message.method}`);
}

/** A running `codex app-server`. */
export class AppServer {
  readonly process: GroupProcess;
  /** Every notification and server request, in order of arrival. */
  readonly messages: AppMessage[] = [];
  /** The `initialize` result. */
  initializeResult: Record<string, unknown> = {};
  readonly #pending = new Map<number, Pending>();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #options: AppServerOptions;
  readonly #started = performance.now();
  #nextId = 1;
  #closed: string | null = null;
  #waiters: Waiter[] = [];
  readonly #reading: Promise<void>;

  private constructor(options: AppServerOptions) {
    this.#options = options;
    const args = ["app-server"];
    for (const override of options.configOverrides ?? []) args.push("-c", override);
    this.process = new GroupProcess("codex app-server", options.codex, args, {
      env: { CODEX_HOME: options.codexHome, RUST_LOG: "warn", ...options.env },
      // The app-server must not reach an executor named by the caller's environment.
      unsetEnv: ["CODEX_EXEC_SERVER_URL", "OPENAI_API_KEY", "CODEX_API_KEY"],
      cwd: options.cwd,
      stdin: true,
    });
    this.#writer = this.process.child.stdin.getWriter();
    this.#reading = this.#read();
  }

  /** Starts the app-server and runs the initialize handshake. */
  static async start(options: AppServerOptions): Promise<AppServer> {
    const server = new AppServer(options);
    try {
      server.initializeResult = await server.request("initialize", {
        clientInfo: {
          name: "execbridge-interop",
          title: "execbridge interop tests",
          version: "0.1.0",
        },
        capabilities: { experimentalApi: true, requestAttestation: false },
      }, 60_000) as Record<string, unknown>;
      server.notify("initialized", {});
      return server;
    } catch (error) {
      await server.close();
      throw error;
    }
  }

  #now(): number {
    return Math.round(performance.now() - this.#started);
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    const reader = this.process.child.stdout.getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line !== "") this.#onLine(line);
        }
      }
    } catch {
      // Cancelled on close.
    } finally {
      reader.releaseLock();
    }
    this.#fail(`codex app-server closed its stdout:\n${this.process.stderrTail(20)}`);
  }

  #fail(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = reason;
    for (const pending of this.#pending.values()) pending.reject(new Error(reason));
    this.#pending.clear();
    this.#notifyWaiters();
  }

  #onLine(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof message.method === "string") {
      const entry: AppMessage = {
        t: this.#now(),
        method: message.method,
        params: (message.params ?? {}) as Record<string, unknown>,
      };
      if (message.id !== undefined && message.id !== null) {
        entry.id = message.id;
        this.messages.push(entry);
        this.#answerServerRequest(entry);
      } else {
        this.messages.push(entry);
      }
      this.#notifyWaiters();
      return;
    }
    if (typeof message.id !== "number") return;
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    if (message.error !== undefined) {
      pending.reject(
        new AppServerError(
          pending.method,
          message.error as { code: number; message: string; data?: unknown },
        ),
      );
    } else {
      pending.resolve(message.result);
    }
  }

  #answerServerRequest(message: AppMessage): void {
    const handler = this.#options.onServerRequest ?? defaultServerRequest;
    let reply: Record<string, unknown>;
    try {
      reply = { id: message.id, result: handler(message) ?? {} };
    } catch (error) {
      reply = {
        id: message.id,
        error: { code: -32601, message: error instanceof Error ? error.message : String(error) },
      };
    }
    this.#send(reply).catch(() => {});
  }

  #notifyWaiters(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (this.#closed !== null || waiter.predicate()) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  async #send(message: Record<string, unknown>): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(message) + "\n"));
  }

  /** Sends a request; resolves with its result, rejects with {@link AppServerError}. */
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    if (this.#closed !== null) return Promise.reject(new Error(this.#closed));
    const id = this.#nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject });
    });
    this.#send({ id, method, params }).catch((error) => {
      const pending = this.#pending.get(id);
      this.#pending.delete(id);
      pending?.reject(error);
    });
    return withTimeout(
      answer,
      timeoutMs ?? this.#options.requestTimeoutMs ?? 60_000,
      `app-server ${method}`,
    ).finally(() => this.#pending.delete(id));
  }

  /** Sends a notification. */
  notify(method: string, params: unknown): void {
    this.#send({ method, params }).catch(() => {});
  }

  /** Resolves once `predicate` holds (checked after every message); rejects on timeout or exit. */
  async waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (!predicate()) {
      await withTimeout(
        new Promise<void>((resolve) => this.#waiters.push({ predicate, resolve })),
        timeoutMs,
        what,
      );
    }
    if (!predicate() && this.#closed !== null) throw new Error(`${what}: ${this.#closed}`);
  }

  /** Notifications (and server requests) named `method`. */
  messagesOf(method: string): AppMessage[] {
    return this.messages.filter((m) => m.method === method);
  }

  /** `mcpServerStatus/list` (every page). */
  async listMcpStatus(
    params: Record<string, unknown> = {},
    timeoutMs = 90_000,
  ): Promise<Record<string, unknown>[]> {
    const servers: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.request(
        "mcpServerStatus/list",
        { ...params, cursor },
        timeoutMs,
      ) as { data: Record<string, unknown>[]; nextCursor: string | null };
      servers.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor !== null && cursor !== undefined);
    return servers;
  }

  /** `thread/start`; resolves with the response (`thread.id` is the id). */
  async startThread(params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return await this.request("thread/start", params, 90_000) as Record<string, unknown>;
  }

  /** `mcpServer/tool/call`. */
  async callMcpTool(
    threadId: string,
    server: string,
    tool: string,
    args: Record<string, unknown> = {},
    timeoutMs = 90_000,
  ): Promise<Record<string, unknown>> {
    return await this.request(
      "mcpServer/tool/call",
      { threadId, server, tool, arguments: args },
      timeoutMs,
    ) as Record<string, unknown>;
  }

  /**
   * `turn/start` with a text prompt, then waits for that turn's
   * `turn/completed` and returns the turn's items and notifications.
   */
  async runTurn(
    threadId: string,
    prompt: string,
    options: { timeoutMs?: number; params?: Record<string, unknown> } = {},
  ): Promise<TurnResult> {
    const from = this.messages.length;
    const started = await this.request("turn/start", {
      threadId,
      input: [{ type: "text", text: prompt, text_elements: [] }],
      ...options.params,
    }) as { turn: { id: string } };
    const turnId = started.turn.id;
    const completed = () =>
      this.messages.slice(from).find((m) =>
        m.method === "turn/completed" &&
        (m.params.turn as { id?: string } | undefined)?.id === turnId
      );
    await this.waitFor(
      () => completed() !== undefined,
      options.timeoutMs ?? 120_000,
      `turn ${turnId}`,
    );
    const done = completed()!;
    const events = this.messages.slice(from).filter((m) =>
      m.params.turnId === turnId ||
      (m.params.turn as { id?: string } | undefined)?.id === turnId
    );
    const turn = done.params.turn as Record<string, unknown>;
    return {
      turnId,
      status: String(turn.status),
      error: turn.error,
      items: events.filter((m) => m.method === "item/completed").map((m) =>
        m.params.item as Record<string, unknown>
      ),
      events,
      turn,
    };
  }

  /** Stops the app-server and everything it started (process group, tree, marker). */
  async close(): Promise<void> {
    this.#fail("closed by the test");
    await this.#writer.close().catch(() => {});
    await this.process.stop(3000);
    await this.#reading;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
