/**
 * `serve`: runs an executor until SIGINT/SIGTERM (or, in stdio mode, until
 * stdin ends). The bound URL is the first line of stdout; logs go to stderr.
 *
 * @module
 */

import type { LogLevel } from "../log/logger.ts";
import { serve } from "../server/serve.ts";
import { readTokenFile, TOKEN_ENV } from "../auth/token.ts";
import { intOption, parseArgs } from "./args.ts";

/** Usage text of `serve`. */
export const SERVE_USAGE = `usage: execbridge serve [options]

  --listen URL                  ws://IP:PORT (default ws://127.0.0.1:0) or stdio
  --token-file FILE             the bearer token clients must send (mode 0600); else
                                EXECBRIDGE_TOKEN; else the default token file
                                \${XDG_STATE_HOME:-~/.local/state}/execbridge/token (created)
  --no-auth                     no token (only on a loopback address)
  --tls-cert FILE --tls-key FILE
                                serve wss:// with this PEM certificate and key
  --allow-origin ORIGIN         a browser origin allowed to connect (repeatable; none by default)
  --allow-host NAME             a host name accepted in the Host header (repeatable)
  --session-ttl-ms N            keep a detached session this long (default 30000)
  --process-retention-ms N      keep a closed process readable this long (default 30000)
  --max-sessions N              (default 256)
  --max-processes N             live processes in all (default 4096)
  --max-processes-per-session N (default 1024)
  --max-pending-requests N      requests in flight per connection (default 1024)
  --max-frame-bytes N           largest inbound message (default and maximum 67108864)
  --max-buffered-bytes N        outbound queue per connection before backpressure (default 67108864)
  --stall-timeout-ms N          close a connection that reads nothing for this long while its
                                queue is full (default 60000)
  --warm-workers N              pre-started process workers (default 2)
  --max-idle-workers N          idle workers kept after a burst of starts (default 256)
  --idle-worker-ttl-ms N        how long those extra idle workers are kept (default 60000)
  --exit-on-stdin-close         stop (killing every process) when stdin ends
  --log-level LEVEL             error | warn | info | debug (default info)
`;

const LEVELS: readonly string[] = ["error", "warn", "info", "debug"];

/** Runs `serve`; resolves with the exit code once the executor stopped. */
export async function serveCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: [
      "listen",
      "token-file",
      "tls-cert",
      "tls-key",
      "session-ttl-ms",
      "process-retention-ms",
      "max-sessions",
      "max-processes",
      "max-processes-per-session",
      "max-pending-requests",
      "max-frame-bytes",
      "max-buffered-bytes",
      "stall-timeout-ms",
      "warm-workers",
      "max-idle-workers",
      "idle-worker-ttl-ms",
      "log-level",
    ],
    multiple: ["allow-origin", "allow-host"],
    boolean: ["help", "no-auth", "exit-on-stdin-close"],
  });
  if (parsed.flags.has("help")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const logLevel = parsed.strings.get("log-level") ?? "info";
  if (!LEVELS.includes(logLevel)) {
    throw new Error(`--log-level must be one of ${LEVELS.join(", ")}, got ${logLevel}`);
  }
  const noAuth = parsed.flags.has("no-auth");
  const tokenFile = parsed.strings.get("token-file");
  if (noAuth && tokenFile !== undefined) throw new Error("--no-auth and --token-file conflict");
  let token: string | undefined;
  if (!noAuth) {
    token = tokenFile !== undefined
      ? await readTokenFile(tokenFile, { requirePrivate: true })
      : Deno.env.get(TOKEN_ENV) || undefined;
  }
  const certFile = parsed.strings.get("tls-cert");
  const keyFile = parsed.strings.get("tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error("--tls-cert and --tls-key go together");
  }
  const tls = certFile !== undefined && keyFile !== undefined
    ? { cert: await Deno.readTextFile(certFile), key: await Deno.readTextFile(keyFile) }
    : undefined;
  const executor = await serve({
    listen: parsed.strings.get("listen"),
    token,
    noAuth,
    tls,
    allowOrigins: parsed.lists.get("allow-origin"),
    allowHosts: parsed.lists.get("allow-host"),
    sessionTtlMs: intOption(parsed, "session-ttl-ms"),
    processRetentionMs: intOption(parsed, "process-retention-ms"),
    maxSessions: intOption(parsed, "max-sessions"),
    maxProcesses: intOption(parsed, "max-processes"),
    maxProcessesPerSession: intOption(parsed, "max-processes-per-session"),
    maxPendingRequests: intOption(parsed, "max-pending-requests"),
    maxFrameBytes: intOption(parsed, "max-frame-bytes"),
    maxBufferedBytes: intOption(parsed, "max-buffered-bytes"),
    stallTimeoutMs: intOption(parsed, "stall-timeout-ms"),
    warmWorkers: intOption(parsed, "warm-workers"),
    maxIdleWorkers: intOption(parsed, "max-idle-workers"),
    idleWorkerTtlMs: intOption(parsed, "idle-worker-ttl-ms"),
    logLevel: logLevel as LogLevel,
  });
  if (executor.url !== "stdio") {
    await Deno.stdout.write(new TextEncoder().encode(executor.url + "\n"));
  }
  const stop = () => {
    executor.close();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  if (parsed.flags.has("exit-on-stdin-close") && executor.url !== "stdio") {
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* discard */ }
      stop();
    })();
  }
  await executor.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
