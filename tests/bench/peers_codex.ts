/**
 * The Codex exec-server (`codex exec-server`, from npm `@openai/codex`) as a
 * benchmark peer, over WebSocket and over stdio, driven by the generic
 * client (generic_client.ts) over `connectWebSocket` (TCP_NODELAY) or
 * `lineChannel`, the same client as the `generic` backend runs against
 * execbridge: the two columns compare the executors on one client.
 *
 * @module
 */

import { connectExecutor } from "../../mod.ts";
import type { TextChannel } from "../../src/transport/channel.ts";
import { lineChannel } from "../../src/transport/line_channel.ts";
import { clientWebSocketChannel } from "../../src/transport/websocket_channel.ts";
import { connectWebSocket } from "../../src/transport/websocket_client.ts";
import { fileUri, type GenericClient } from "./generic_client.ts";
import { PeerProcess, PEERS_DIR } from "./peers_process.ts";
import { type ExecTarget, readVmRss, withDeadline } from "./targets.ts";

/** How a Codex exec-server is reached. */
export type CodexTransport = "ws" | "stdio";

/** The environment of the exec-server itself: ours (it is `envPolicy: core`'s source), own CODEX_HOME. */
function serverEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.EXECBRIDGE_TOKEN;
  // Keep it away from the user's ~/.codex (config.toml, logs, state).
  env.CODEX_HOME = `${PEERS_DIR}codex-home`;
  return env;
}

/** A running `codex exec-server` and the channel to it. */
export interface CodexServer {
  /** The server process. */
  readonly process: PeerProcess;
  /** `ws://…` for WebSocket, null for stdio. */
  readonly url: string | null;
  /** Opens the channel of a new connection (stdio: only once). */
  channel(): Promise<TextChannel>;
  /** Stops the server and every process it started. */
  stop(): Promise<void>;
}

/** Starts `codex exec-server --listen ws://127.0.0.1:0` or `--listen stdio`. */
export async function startCodexServer(
  binary: string,
  transport: CodexTransport,
): Promise<CodexServer> {
  await Deno.mkdir(`${PEERS_DIR}codex-home`, { recursive: true });
  const listen = transport === "ws" ? "ws://127.0.0.1:0" : "stdio";
  const process = new PeerProcess(
    `codex exec-server --listen ${listen}`,
    binary,
    ["exec-server", "--listen", listen],
    { env: serverEnv(), stdin: transport === "stdio" ? "piped" : "null" },
  );
  try {
    if (transport === "ws") {
      const url = await process.waitForLine((line) => line.startsWith("ws://"), 30_000);
      return {
        process,
        url,
        async channel() {
          const socket = await connectWebSocket(url, { connectTimeoutMs: 10_000 });
          return clientWebSocketChannel(socket, url);
        },
        stop: () => process.stop(3000, "SIGTERM"),
      };
    }
    let used = false;
    return {
      process,
      url: null,
      channel() {
        if (used) return Promise.reject(new Error("a stdio exec-server has one connection"));
        used = true;
        return Promise.resolve(
          lineChannel(process.child.stdout, process.child.stdin, { peer: "codex stdio" }),
        );
      },
      stop: () => process.stop(3000, "SIGTERM"),
    };
  } catch (error) {
    await process.stop(0);
    throw error;
  }
}

/** An {@link ExecTarget} over a Codex exec-server, for the shared scenarios. */
export function codexTarget(server: CodexServer, connection: GenericClient): ExecTarget {
  return {
    name: "remote",
    backend: connection,
    rss: () => readVmRss(server.process.pid),
    fds: () => Promise.resolve(0),
    close: () => connection.close(),
  };
}

/**
 * What execbridge's own client makes of this exec-server: whether
 * `connectExecutor` (with its `binaryOutput` extension in `initialize`) gets
 * a session, and how a `process/start` and `process/write` as it sends them
 * fare. Each finding is one line.
 */
export async function probeExecbridgeClient(url: string): Promise<string[]> {
  const notes: string[] = [];
  let executor;
  try {
    executor = await connectExecutor(url, { clientName: "execbridge-bench-probe" });
    notes.push(
      'connectExecutor: initialize (with `jsonrpc: "2.0"` and execbridge\'s extra ' +
        "`binaryOutput` param) is accepted: unknown fields are ignored, output still comes " +
        "as base64 JSON notifications, responses carry no `jsonrpc` field",
    );
  } catch (error) {
    notes.push(`connectExecutor: initialize failed: ${messageOf(error)}`);
    return notes;
  }
  try {
    try {
      const proc = await executor.start({ processId: "probe-1", argv: ["true"], env: {} });
      await withDeadline(proc.wait(), 5000, "probe-1").catch(() => {});
      notes.push("process/start without cwd/tty: accepted");
    } catch (error) {
      notes.push(`process/start as execbridge sends it (no cwd, no tty): ${messageOf(error)}`);
    }
    try {
      const proc = await executor.start({
        processId: "probe-2",
        argv: ["true"],
        cwd: Deno.cwd(),
        env: {},
        tty: false,
      });
      await withDeadline(proc.wait(), 5000, "probe-2").catch(() => {});
      notes.push("process/start with a native cwd path: accepted");
    } catch (error) {
      notes.push(`process/start with a native cwd path: ${messageOf(error)}`);
    }
    try {
      const proc = await executor.start({
        processId: "probe-3",
        argv: ["cat"],
        cwd: fileUri(Deno.cwd()),
        env: {},
        tty: false,
        pipeStdin: true,
      });
      try {
        notes.push(`process/write without writeId: ${await proc.write("x\n")}`);
      } catch (error) {
        notes.push(`process/write without writeId: ${messageOf(error)}`);
      }
      try {
        await proc.terminate({ signal: "SIGTERM" });
        const status = await withDeadline(proc.wait(), 5000, "probe-3");
        notes.push(
          `process/terminate with signal SIGTERM: the signal field is ignored, cat got SIGKILL ` +
            `(exitCode ${status.exitCode}, no signal name in process/exited)`,
        );
      } catch (error) {
        notes.push(`process/terminate with signal: ${messageOf(error)}`);
      }
    } catch (error) {
      notes.push(`process/start with a file:// cwd: ${messageOf(error)}`);
    }
  } finally {
    await executor.close().catch(() => {});
  }
  return notes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
