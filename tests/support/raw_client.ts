/**
 * A raw JSON-RPC test client: sends exactly what a test says and records
 * every response and notification, for protocol-level assertions.
 */

import { connectWebSocket, type WebSocketClient } from "../../src/transport/websocket_client.ts";

/** A JSON-RPC message as received. */
// deno-lint-ignore no-explicit-any
export type Message = Record<string, any>;

/** A raw connection to an executor. */
export class RawClient {
  readonly socket: WebSocketClient;
  readonly notifications: Message[] = [];
  #nextId = 1;
  #waiters = new Map<unknown, (message: Message) => void>();
  #unmatched: Message[] = [];
  #notificationWaiters: { test(m: Message): boolean; resolve(m: Message): void }[] = [];
  closed: Promise<{ code: number }>;

  private constructor(socket: WebSocketClient) {
    this.socket = socket;
    let resolveClosed: (e: { code: number }) => void = () => {};
    this.closed = new Promise((resolve) => resolveClosed = resolve);
    socket.onclose = (event) => resolveClosed(event);
    socket.onmessage = (data) => {
      const message = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
      if (message.method !== undefined) {
        this.notifications.push(message);
        this.#notificationWaiters = this.#notificationWaiters.filter((w) => {
          if (!w.test(message)) return true;
          w.resolve(message);
          return false;
        });
        return;
      }
      const waiter = this.#waiters.get(message.id);
      if (waiter !== undefined) {
        this.#waiters.delete(message.id);
        waiter(message);
      } else {
        this.#unmatched.push(message);
      }
    };
  }

  /** Connects with the test token, or with exactly `headers` when given. */
  static async connect(url: string, headers?: Record<string, string>): Promise<RawClient> {
    const auth = { Authorization: `Bearer ${Deno.env.get("EXECBRIDGE_TOKEN")}` };
    return new RawClient(await connectWebSocket(url, { headers: headers ?? auth }));
  }

  /** Connects and completes initialize + initialized. */
  static async initialized(url: string, resumeSessionId?: string): Promise<RawClient> {
    const client = await RawClient.connect(url);
    const response = await client.request("initialize", { clientName: "test", resumeSessionId });
    if (response.error) throw new Error(JSON.stringify(response.error));
    client.sessionId = response.result.sessionId;
    client.notify("initialized", {});
    return client;
  }

  sessionId = "";

  /** Sends a request and resolves with the whole response message. */
  request(method: string, params?: unknown): Promise<Message> {
    const id = this.#nextId++;
    return this.sendRaw(JSON.stringify({ jsonrpc: "2.0", id, method, params }), id);
  }

  /** Sends a notification. */
  notify(method: string, params?: unknown): void {
    this.socket.send(JSON.stringify({ jsonrpc: "2.0", method, params }));
  }

  /** Sends any text and (when `id` is given) waits for the response with that id. */
  sendRaw(text: string, id?: unknown): Promise<Message> {
    const response = new Promise<Message>((resolve) => {
      if (id !== undefined) this.#waiters.set(id, resolve);
      else resolve({});
    });
    this.socket.send(text);
    return response;
  }

  /** Waits for the next response that matches no request (e.g. id null errors). */
  async nextUnmatched(): Promise<Message> {
    const deadline = Date.now() + 5000;
    while (this.#unmatched.length === 0) {
      if (Date.now() > deadline) throw new Error("no unmatched response arrived");
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.#unmatched.shift()!;
  }

  /** Resolves with the first notification (past or future) that passes `test`. */
  waitNotification(test: (m: Message) => boolean): Promise<Message> {
    const seen = this.notifications.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#notificationWaiters.push({ test, resolve }));
  }

  /** Closes the socket. */
  close(): Promise<void> {
    return this.socket.close();
  }
}
