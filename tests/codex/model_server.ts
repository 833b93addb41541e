/**
 * A scripted model: a fake OpenAI Responses API (`POST /v1/responses`,
 * answered with server-sent events) on 127.0.0.1:0, so that the real Codex
 * runs tool calls the test chooses, without any real model.
 *
 * A script is a list of turns. Each turn is the tool calls the model makes,
 * step by step (every step is one model response, whose calls Codex runs
 * before it asks the model again), then the final assistant message that ends
 * the turn. Every request body is recorded, so a test can read the tool
 * outputs Codex sent back (`function_call_output` items of the next request).
 *
 * The event shapes are those Codex's own test suite serves
 * (`codex-rs/core/tests/common/responses.rs`): `response.created`, one
 * `response.output_item.done` per output item, `response.completed` with a
 * `usage` object; each as `event: TYPE` + `data: JSON`.
 *
 * @module
 */

/** One tool call the model makes. */
export interface ScriptedCall {
  /**
   * The tool's name as Codex offers it: `exec_command`, `write_stdin`,
   * `apply_patch`, `view_image`, or an MCP tool (`mcp__SERVER__TOOL`).
   */
  name: string;
  /**
   * The arguments: an object (sent as JSON text), the raw JSON text, or a
   * function of the model that computes them when the call is sent (to use
   * what earlier tool outputs said, e.g. a unified exec session id).
   */
  arguments?: unknown | ((model: ScriptedModel) => unknown);
  /** The call id (default: `call-<turn>-<step>-<index>`). */
  callId?: string;
  /**
   * `function_call` (default) or `custom_tool_call` (freeform tools such as
   * a grammar-based `apply_patch`: then `input` is sent instead of JSON
   * arguments).
   */
  kind?: "function_call" | "custom_tool_call";
  /** For `custom_tool_call`: the raw input. */
  input?: string;
  /** The `namespace` of the function call, when Codex offers the tool in one. */
  namespace?: string;
}

/** One user turn: the model's tool call steps, then its final message. */
export interface ScriptedTurn {
  /** Tool calls, one array per model response. */
  steps?: ScriptedCall[][];
  /** The final assistant message (default: "done"). */
  message?: string;
}

/** A request Codex sent to the model. */
export interface RecordedRequest {
  /** When it arrived (ms since the server started). */
  at: number;
  /** HTTP method and path. */
  method: string;
  path: string;
  /** Request headers (authorization redacted). */
  headers: Record<string, string>;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
  /** Which scripted response answered it (`turn.step`), or a reason it got none. */
  answeredWith: string;
}

/** A `function_call_output` (or custom tool output) item Codex sent back. */
export interface ToolOutput {
  callId: string;
  type: string;
  /** The output as text (string outputs as is, content arrays joined). */
  text: string;
  /** The raw item. */
  item: Record<string, unknown>;
}

/** The parts of an output item that a test usually reads. */
function outputText(item: Record<string, unknown>): string {
  const output = item.output;
  if (typeof output === "string") return output;
  if (Array.isArray(output)) {
    return output.map((part) => {
      if (typeof part === "object" && part !== null) {
        const p = part as Record<string, unknown>;
        if (typeof p.text === "string") return p.text;
        if (typeof p.image_url === "string") return `[image ${p.image_url.slice(0, 40)}…]`;
      }
      return JSON.stringify(part);
    }).join("\n");
  }
  if (typeof output === "object" && output !== null) {
    const o = output as Record<string, unknown>;
    if (typeof o.content === "string") return o.content;
    return JSON.stringify(output);
  }
  return String(output);
}

function sse(events: Record<string, unknown>[]): string {
  let out = "";
  for (const event of events) out += `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
  return out;
}

function usage() {
  return {
    input_tokens: 0,
    input_tokens_details: null,
    output_tokens: 0,
    output_tokens_details: null,
    total_tokens: 0,
  };
}

/** The SSE body of one scripted model response. */
export function responseEvents(
  responseId: string,
  calls: ScriptedCall[],
  message: string | null,
  idPrefix: string,
  model: ScriptedModel | null = null,
): string {
  const events: Record<string, unknown>[] = [
    { type: "response.created", response: { id: responseId } },
  ];
  calls.forEach((call, index) => {
    const callId = call.callId ?? `${idPrefix}-${index}`;
    if (call.kind === "custom_tool_call") {
      events.push({
        type: "response.output_item.done",
        item: {
          type: "custom_tool_call",
          call_id: callId,
          name: call.name,
          input: call.input ?? "",
        },
      });
      return;
    }
    const value = typeof call.arguments === "function"
      ? (call.arguments as (model: ScriptedModel | null) => unknown)(model)
      : call.arguments;
    const args = typeof value === "string" ? value : JSON.stringify(value ?? {});
    const item: Record<string, unknown> = {
      type: "function_call",
      call_id: callId,
      name: call.name,
      arguments: args,
    };
    if (call.namespace !== undefined) item.namespace = call.namespace;
    events.push({ type: "response.output_item.done", item });
  });
  if (message !== null) {
    events.push({
      type: "response.output_item.done",
      item: {
        type: "message",
        role: "assistant",
        id: `${responseId}-msg`,
        content: [{ type: "output_text", text: message }],
      },
    });
  }
  events.push({ type: "response.completed", response: { id: responseId, usage: usage() } });
  return sse(events);
}

interface Waiter {
  predicate: () => boolean;
  resolve: () => void;
}

/** The scripted Responses API server. */
export class ScriptedModel {
  /** `http://127.0.0.1:PORT/v1`: the provider's `base_url`. */
  readonly baseUrl: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #turns: ScriptedTurn[] = [];
  readonly #started = performance.now();
  #turn = 0;
  #step = 0;
  #responses = 0;
  #waiters: Waiter[] = [];

  private constructor(turns: ScriptedTurn[]) {
    this.#turns.push(...turns);
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.baseUrl = `http://127.0.0.1:${this.#server.addr.port}/v1`;
  }

  /** Starts a model that plays `turns`. */
  static start(turns: ScriptedTurn[] = []): ScriptedModel {
    return new ScriptedModel(turns);
  }

  /** Appends turns to the script (for tests that script turn by turn). */
  push(...turns: ScriptedTurn[]): void {
    this.#turns.push(...turns);
  }

  /** The `POST …/responses` requests (the model turns), in order. */
  responseRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === "POST" && r.path.endsWith("/responses"));
  }

  /** Every tool output item Codex sent back to the model, across all requests, deduplicated by call id. */
  toolOutputs(): ToolOutput[] {
    const seen = new Map<string, ToolOutput>();
    for (const request of this.responseRequests()) {
      const input = (request.body as { input?: unknown })?.input;
      if (!Array.isArray(input)) continue;
      for (const item of input as Record<string, unknown>[]) {
        if (typeof item?.type !== "string" || !item.type.endsWith("_output")) continue;
        const callId = String(item.call_id ?? "");
        if (seen.has(callId)) continue;
        seen.set(callId, { callId, type: item.type, text: outputText(item), item });
      }
    }
    return [...seen.values()];
  }

  /** The output Codex sent back for `callId`, or undefined. */
  toolOutput(callId: string): ToolOutput | undefined {
    return this.toolOutputs().find((o) => o.callId === callId);
  }

  /**
   * The unified exec session id that the latest tool output announced
   * ("Process running with session ID N"), or null.
   */
  lastSessionId(): number | null {
    let found: number | null = null;
    for (const output of this.toolOutputs()) {
      const match = /session ID (\d+)/.exec(output.text);
      if (match) found = Number(match[1]);
    }
    return found;
  }

  /** The names of the tools Codex offered in its last model request. */
  offeredTools(): string[] {
    const last = this.responseRequests().at(-1);
    const tools = (last?.body as { tools?: unknown })?.tools;
    if (!Array.isArray(tools)) return [];
    const names: string[] = [];
    for (const tool of tools as Record<string, unknown>[]) {
      if (typeof tool.name === "string") names.push(tool.name);
      else if (tool.type === "namespace" && Array.isArray(tool.tools)) {
        for (const inner of tool.tools as Record<string, unknown>[]) {
          names.push(`${tool.name ?? ""}${inner.name}`);
        }
      } else if (typeof tool.type === "string") names.push(`<${tool.type}>`);
    }
    return names;
  }

  /** Resolves once `predicate` holds (checked after every request). */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #notify(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.predicate()) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = key === "authorization" ? "<redacted>" : value;
    });
    const text = await request.text();
    let body: unknown = text;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      // Not JSON: kept as text.
    }
    const record: RecordedRequest = {
      at: Math.round(performance.now() - this.#started),
      method: request.method,
      path: url.pathname,
      headers,
      body,
      answeredWith: "",
    };
    this.requests.push(record);
    try {
      if (request.method === "POST" && url.pathname.endsWith("/responses")) {
        return this.#answerResponses(record);
      }
      if (request.method === "GET" && url.pathname.endsWith("/models")) {
        record.answeredWith = "models: empty list";
        return Response.json({ object: "list", data: [], models: [] });
      }
      record.answeredWith = "404";
      return new Response("not found", { status: 404 });
    } finally {
      queueMicrotask(() => this.#notify());
    }
  }

  #answerResponses(record: RecordedRequest): Response {
    const responseId = `resp-${++this.#responses}`;
    const turn = this.#turns[this.#turn];
    let body: string;
    if (turn === undefined) {
      record.answeredWith = "beyond the script: a bare message";
      body = responseEvents(responseId, [], "(the script has no more turns)", responseId);
    } else {
      const steps = turn.steps ?? [];
      const prefix = `call-${this.#turn + 1}-${this.#step + 1}`;
      if (this.#step < steps.length) {
        record.answeredWith = `turn ${this.#turn + 1} step ${this.#step + 1}`;
        body = responseEvents(responseId, steps[this.#step], null, prefix, this);
        this.#step++;
      } else {
        record.answeredWith = `turn ${this.#turn + 1} message`;
        body = responseEvents(responseId, [], turn.message ?? "done", prefix);
        this.#turn++;
        this.#step = 0;
      }
    }
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }
}
