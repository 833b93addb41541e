/**
 * `bridge` as a process, driven over its stdin/stdout like an MCP client
 * would, with the fixture MCP server (or another command) behind it.
 */

import assert from "node:assert/strict";
import { cliArgs, fixtureServer } from "./cli.ts";

/** A JSON-RPC message as read from the bridge's stdout. */
// deno-lint-ignore no-explicit-any
export type Message = Record<string, any>;

/** A running bridge. */
export interface BridgeProcess {
  /** Writes one message as a line on its stdin. */
  send(message: unknown): Promise<void>;
  /** The next message on its stdout. */
  next(): Promise<Message>;
  /** Reads until the response with `id`; the messages before it stay in {@link seen}. */
  response(id: unknown): Promise<Message>;
  /** Every message read so far, in order. */
  readonly seen: Message[];
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves once its stderr matches `pattern` (rejects if stderr ends first). */
  waitForStderr(pattern: RegExp): Promise<void>;
  /** Ends its stdin (the client went away). */
  closeStdin(): Promise<void>;
  /** Reads to the end; with `keepStdin` the bridge must end on its own. */
  finish(keepStdin?: boolean): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Options of {@link startBridge}. */
export interface StartBridgeOptions {
  /** Flags of the fixture server (ignored when `server` is given). */
  serverFlags?: string[];
  /** Another server command instead of the fixture. */
  server?: { command: string; args: string[] };
  /** Flags of `bridge` itself (`--no-respawn`, …). */
  bridgeFlags?: string[];
}

/** A child's stderr, collected as it comes, with a wait for a pattern in it. */
export interface StderrWatch {
  /** Everything so far. */
  text(): string;
  /** Resolves once the text matches `pattern` (rejects if stderr ends first). */
  waitFor(pattern: RegExp): Promise<void>;
  /** Settles once stderr ended. */
  done: Promise<void>;
}

/** Collects `stream` (a child's stderr) and lets a test wait for a line in it. */
export function watchStderr(stream: ReadableStream<Uint8Array>): StderrWatch {
  let text = "";
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const waiter of waiters) {
        if (waiter.pattern.test(text)) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  })();
  return {
    text: () => text,
    done,
    waitFor(pattern) {
      if (pattern.test(text)) return Promise.resolve();
      const { promise, resolve } = Promise.withResolvers<void>();
      const waiter = { pattern, resolve };
      waiters.add(waiter);
      const ended = done.then(() => {
        if (!waiters.delete(waiter)) return;
        throw new Error(`stderr ended before it matched ${pattern}:\n${text}`);
      });
      return Promise.race([promise, ended]);
    },
  };
}

/** Starts `bridge --executor URL [flags] -- SERVER`. */
export function startBridge(url: string, options: StartBridgeOptions = {}): BridgeProcess {
  const server = options.server ?? fixtureServer(...(options.serverFlags ?? []));
  const child = new Deno.Command(Deno.execPath(), {
    args: cliArgs(
      "bridge",
      "--executor",
      url,
      ...(options.bridgeFlags ?? []),
      "--",
      server.command,
      ...server.args,
    ),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  let consumed = 0;
  const errors = watchStderr(child.stderr);
  let stdinOpen = true;
  const seen: Message[] = [];
  const next = async (): Promise<Message> => {
    while (!stdout.slice(consumed).includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`bridge stdout ended; stderr:\n${errors.text()}`);
      stdout += value;
    }
    const end = stdout.indexOf("\n", consumed);
    const line = stdout.slice(consumed, end);
    consumed = end + 1;
    const message = JSON.parse(line);
    seen.push(message);
    return message;
  };
  return {
    seen,
    send: (message) => writer.write(new TextEncoder().encode(JSON.stringify(message) + "\n")),
    next,
    async response(id) {
      while (true) {
        const message = await next();
        if (message.id === id && message.method === undefined) return message;
      }
    },
    stderr: errors.text,
    waitForStderr: errors.waitFor,
    async closeStdin() {
      stdinOpen = false;
      await writer.close();
    },
    async finish(keepStdin = false) {
      if (stdinOpen && !keepStdin) await writer.close().catch(() => {});
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += value;
      }
      await errors.done;
      const status = await child.status;
      if (stdinOpen && keepStdin) await writer.close().catch(() => {});
      return { code: status.code, stdout, stderr: errors.text() };
    },
  };
}

/** The MCP `initialize` request tests send (id 1). */
export const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "t", version: "1" },
  },
};

/** `initialize` (checking it reached the fixture), then `notifications/initialized`. */
export async function handshake(bridge: BridgeProcess): Promise<void> {
  await bridge.send(INITIALIZE);
  const init = await bridge.response(1);
  assert.equal(
    (init.result as { serverInfo: { name: string } }).serverInfo.name,
    "test-mcp-server",
  );
  await bridge.send({ jsonrpc: "2.0", method: "notifications/initialized" });
}

/** A `tools/call` request. */
export function call(id: number, name: string, args: Record<string, unknown> = {}): Message {
  return { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } };
}

/** The text of a `tools/call` response. */
export function resultText(response: Message): string {
  const content = (response.result as { content: { type: string; text?: string }[] }).content;
  return content.filter((c) => c.type === "text").map((c) => c.text).join("");
}
