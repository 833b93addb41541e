/**
 * `serve(options)`: the executor. Listens on a WebSocket address
 * (`Deno.serve` + `Deno.upgradeWebSocket`) or on its own stdin/stdout, and
 * serves the process and filesystem API to each connection.
 *
 * @module
 */

import { createLogger, type Logger, type LogLevel } from "../log/logger.ts";
import { LEAN_WORKERS_V8_FLAG, leanWorkersFlagSet } from "../process/host/v8_flags.ts";
import { WorkerPool } from "../process/host/worker_pool.ts";
import { ExecutorMetrics, type GaugeSources } from "./metrics.ts";
import { observeValues, TRACING } from "../util/telemetry.ts";
import { detectBwrap } from "../sandbox/bwrap.ts";
import { lineChannel } from "../transport/line_channel.ts";
import { serverWebSocketChannel } from "../transport/websocket_channel.ts";
import { loadOrCreateDefaultToken } from "../auth/token.ts";
import { guardRequest, isLoopback, type RequestPolicy } from "./request_guard.ts";
import { ServerConnection } from "./connection.ts";
import { type LimitName, resolveLimits } from "./defaults.ts";
import { SessionRegistry } from "./session_registry.ts";
import { settlesWithin } from "../util/deadline.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** `ws://IP:PORT` (default `ws://127.0.0.1:0`, a free port) or `stdio`. */
  listen?: string;
  /**
   * The bearer token every WebSocket upgrade must carry. Default: the token
   * in `${XDG_STATE_HOME:-~/.local/state}/execbridge/token`, created when
   * missing.
   */
  token?: string;
  /** Accept connections without a token: only allowed on a loopback address. */
  noAuth?: boolean;
  /** Serve `wss://` with this PEM certificate chain and key. */
  tls?: { cert: string; key: string };
  /** Origins (`scheme://host[:port]`) allowed to open a WebSocket; none by default. */
  allowOrigins?: string[];
  /** Host names accepted in the `Host` header besides IP literals (and `localhost` on loopback). */
  allowHosts?: string[];
  /** Largest inbound message in bytes (default and maximum 64 MiB); larger ones close the connection with 1009. */
  maxFrameBytes?: number;
  /**
   * Outbound bytes a connection may have queued (default 64 MiB): past half of
   * it the session's processes stop being read (backpressure); a connection
   * that stays full for `stallTimeoutMs` is closed.
   */
  maxBufferedBytes?: number;
  /** How long a connection may stay full before it is closed (default 60 s). */
  stallTimeoutMs?: number;
  /**
   * How long a detached session waits for a resume before its processes are
   * killed (default 60 s: longer than a client's default resume window of
   * 30 s plus the time it takes to notice a dead link).
   */
  sessionTtlMs?: number;
  /**
   * Graceful drain, on SIGTERM (`serve`) or {@link Executor.drain}: `/readyz`
   * answers 503 at once, new sessions and new processes are refused (resumes
   * are not), and running processes get up to this long to finish, their
   * output still delivered; then every process group is killed. Default 0:
   * stop at once.
   */
  drainTimeoutMs?: number;
  /**
   * Dead-peer detection on WebSocket connections: after this long without a
   * frame from the client the executor pings it, and a client that answers
   * nothing for as long again is dropped (its session detaches). Rounded up
   * to whole seconds (Deno's WebSocket idle timeout); 0 turns it off.
   * Default 5 s: a dead link is noticed within 10 s.
   */
  pingIntervalMs?: number;
  /** How long a closed process stays readable (default 30 s). */
  processRetentionMs?: number;
  /** Pre-started process workers (default 2). */
  warmWorkers?: number;
  /** Idle workers kept after a burst, for the next one (default 256). */
  maxIdleWorkers?: number;
  /** How long idle workers beyond `warmWorkers` are kept (default 60 s). */
  idleWorkerTtlMs?: number;
  /** Most sessions (default 256). */
  maxSessions?: number;
  /** Most live processes per session (default 1024). */
  maxProcessesPerSession?: number;
  /** Most live processes in all (default 4096). */
  maxProcesses?: number;
  /** Most requests in flight per connection (default 1024). */
  maxPendingRequests?: number;
  /** Log level for the default stderr logger (default `info`). */
  logLevel?: LogLevel;
  /** A logger to use instead of the default. */
  logger?: Logger;
  /** Streams for `listen: "stdio"` (default: this process's stdin and stdout). */
  stdio?: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
}

/** A running executor. */
export interface Executor extends AsyncDisposable {
  /** `ws://IP:PORT` (or `wss://`) it listens on, or `stdio`. */
  readonly url: string;
  /** The file the token came from, when it is the default token file. */
  readonly tokenPath: string | null;
  /** Resolves once the executor stopped (close, or end of stdin in stdio mode). */
  readonly finished: Promise<void>;
  /** Stops accepting, closes connections, kills every process group, stops workers. */
  close(): Promise<void>;
  /**
   * Stops taking new work (`/readyz` 503, no new sessions or processes; resumes
   * still accepted), waits up to `drainTimeoutMs` for the running processes
   * to finish, then {@link close}s. With `drainTimeoutMs` 0, the same as close.
   */
  drain(): Promise<void>;
}

/** A parsed `--listen` value. */
export type ListenAddress = { kind: "stdio" } | { kind: "ws"; hostname: string; port: number };

/**
 * Parses a listen URL: `stdio`, or `ws://IP:PORT` with a literal IPv4/IPv6
 * address or `localhost`.
 */
export function parseListenUrl(listen: string): ListenAddress {
  if (listen === "stdio") return { kind: "stdio" };
  if (listen.startsWith("wss://")) listen = "ws://" + listen.slice("wss://".length);
  if (!listen.startsWith("ws://")) {
    throw new Error(
      `unsupported --listen URL \`${listen}\`; expected \`ws://IP:PORT\` or \`stdio\``,
    );
  }
  const invalid = new Error(
    `invalid websocket --listen URL \`${listen}\`; expected \`ws://IP:PORT\` (e.g. ws://127.0.0.1:8765)`,
  );
  let url: URL;
  try {
    url = new URL(listen);
  } catch {
    throw invalid;
  }
  if (url.port === "" || (url.pathname !== "/" && url.pathname !== "") || url.search !== "") {
    throw invalid;
  }
  let hostname = url.hostname;
  if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
  else if (hostname === "localhost") hostname = "127.0.0.1";
  else if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(hostname)) throw invalid;
  return { kind: "ws", hostname, port: Number(url.port) };
}

function formatUrl(scheme: string, hostname: string, port: number): string {
  return hostname.includes(":")
    ? `${scheme}://[${hostname}]:${port}`
    : `${scheme}://${hostname}:${port}`;
}

// Every limit in the defaults table is an option of `serve()` (checked at compile time).
const _everyLimitIsAnOption: Record<LimitName, true> = {} as Record<
  keyof ServeOptions & LimitName,
  true
>;

/**
 * Starts an executor in this process.
 *
 * @example
 * ```ts
 * import { connectExecutor, serve } from "@execbridge/execbridge";
 *
 * await using executor = await serve({ listen: "ws://127.0.0.1:0", token: "secret" });
 * const client = await connectExecutor(executor.url, { token: "secret" });
 * const proc = await client.start({ processId: "p1", argv: ["true"] });
 * console.log(await proc.wait()); // { exitCode: 0, signal: null }
 * await client.close();
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Executor> {
  const address = parseListenUrl(options.listen ?? "ws://127.0.0.1:0");
  const log = options.logger ?? createLogger({ name: "serve", level: options.logLevel });
  let token: string | null = options.token ?? null;
  let tokenPath: string | null = null;
  if (address.kind === "ws") {
    if (options.noAuth) {
      if (!isLoopback(address.hostname)) {
        throw new Error(
          `--no-auth is only allowed on a loopback address (127.0.0.0/8 or ::1), not ` +
            `${address.hostname}: use a token (the default) to listen elsewhere`,
        );
      }
      token = null;
    } else if (token === null) {
      const loaded = await loadOrCreateDefaultToken();
      token = loaded.token;
      tokenPath = loaded.path;
    }
  }
  const limits = resolveLimits(options);
  // Whether sandboxes can be enforced here, known before the first client asks (environment/info).
  await detectBwrap();
  const pool = new WorkerPool({
    warmWorkers: limits.warmWorkers,
    maxIdleWorkers: limits.maxIdleWorkers,
    idleWorkerTtlMs: limits.idleWorkerTtlMs,
  });
  // The warm workers are made on the first connection: an idle executor holds none, and the
  // URL line is not held up by them (docs/performance.md, "Start-up").
  let warm = (): void => {
    warm = () => {};
    pool.prewarm();
  };
  const metrics = new ExecutorMetrics();
  const registry = new SessionRegistry({ ...limits, pool, log, metrics });
  const connections = new Set<ServerConnection>();
  const connectionOptions = { ...limits, registry, log };
  let resolveFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => resolveFinished = resolve);
  let closing: Promise<void> | null = null;
  let draining: Promise<void> | null = null;
  let stopListening: () => Promise<void> = () => Promise.resolve();
  let url: string;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      await stopListening();
      await Promise.all([...connections].map((c) => c.close(1001, "executor shutting down")));
      const sessions = registry.shutdown();
      const allClosed = Promise.all(sessions.map((s) => s.processes.whenAllClosed()));
      await settlesWithin(allClosed, 2000);
      // Shutting down: the process exits next, so no pacing (with 200 idle workers, paced
      // terminations made the exit take 2.5 s instead of 1.2).
      await pool.close({ atOnce: true });
      log.info("executor stopped");
      resolveFinished();
    })();
    return closing;
  };

  const drain = (): Promise<void> => {
    if (closing !== null) return closing;
    draining ??= (async () => {
      registry.drain();
      const ms = limits.drainTimeoutMs;
      if (ms > 0) {
        log.info(
          `draining: no new sessions or processes; waiting up to ${ms} ms for ` +
            `${registry.liveProcesses} running process(es)`,
        );
        await settlesWithin(registry.whenAllClosed(), ms);
      }
      await close();
    })();
    return draining;
  };
  const gauges: GaugeSources = {
    processesLive: () => registry.liveProcesses,
    sessionsLive: () => registry.size,
    sessionsDetached: () => registry.detached,
    connectionsLive: () => connections.size,
    workersIdle: () => pool.idle,
    draining: () => draining !== null ? 1 : 0,
  };

  // With Deno's OpenTelemetry on, the same gauges and counters go out as OTel instruments.
  if (TRACING) {
    const samples = () => new Map(metrics.samples(gauges).map((m) => [m.name, m.value]));
    observeValues(
      metrics.samples(gauges).map((m) => ({ name: m.name, type: m.type, description: m.help })),
      (name) => samples().get(name) ?? 0,
    );
  }

  if (address.kind === "stdio") {
    const stdio = options.stdio ??
      { readable: Deno.stdin.readable, writable: Deno.stdout.writable };
    const channel = lineChannel(stdio.readable, stdio.writable, {
      peer: "stdio",
      maxLineBytes: limits.maxFrameBytes,
    });
    const connection = new ServerConnection(channel, {
      ...connectionOptions,
      onClose: () => {
        connections.delete(connection);
        close();
      },
    });
    connections.add(connection);
    metrics.connected();
    warm();
    url = "stdio";
    log.info("serving JSON-RPC on stdin/stdout");
  } else {
    const policy: RequestPolicy = {
      token,
      allowOrigins: options.allowOrigins ?? [],
      allowHosts: options.allowHosts ?? [],
      listenHostname: address.hostname,
      port: address.port,
      ready: () => closing === null && draining === null,
    };
    // Deno's idle timeout pings after half of it without a frame from the client and closes after
    // the other half: twice the interval gives the documented ping after the interval, drop after
    // as long again.
    const idleTimeout = 2 * Math.ceil(limits.pingIntervalMs / 1000);
    const serveOptions = {
      hostname: address.hostname,
      port: address.port,
      onListen() {},
    };
    const server = Deno.serve(
      options.tls
        ? { ...serveOptions, cert: options.tls.cert, key: options.tls.key }
        : serveOptions,
      (request, info) => {
        const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
        const decision = guardRequest(request, policy);
        if (decision.kind === "respond") {
          if (decision.log) log.warn(`${peer}: ${decision.log}`);
          return decision.response;
        }
        if (decision.kind === "metrics") {
          return new Response(metrics.render(gauges), {
            headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
          });
        }
        warm();
        const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout });
        const connection = new ServerConnection(
          serverWebSocketChannel(socket, peer, { maxMessageBytes: limits.maxFrameBytes }),
          { ...connectionOptions, onClose: () => connections.delete(connection) },
        );
        connections.add(connection);
        metrics.connected();
        return response;
      },
    );
    stopListening = () => server.shutdown();
    const addr = server.addr as Deno.NetAddr;
    policy.port = addr.port;
    url = formatUrl(options.tls ? "wss" : "ws", addr.hostname, addr.port);
    if (token === null) log.warn(`listening on ${url} WITHOUT authentication (--no-auth)`);
    else if (tokenPath !== null) log.info(`listening on ${url}; token in ${tokenPath}`);
    else log.info(`listening on ${url}`);
  }
  if (leanWorkersFlagSet() === false) {
    log.info(
      `each process worker holds its own copy of V8's builtins (~1.8 MiB): run deno with ` +
        `--v8-flags=${LEAN_WORKERS_V8_FLAG} to save it (docs/performance.md)`,
    );
  }

  return {
    url,
    tokenPath,
    finished,
    close,
    drain,
    [Symbol.asyncDispose]: close,
  };
}
