/**
 * `serve`: runs an executor until SIGINT/SIGTERM (or, in stdio mode, until
 * stdin ends). The bound URL is the first line of stdout; logs go to stderr.
 *
 * @module
 */

import type { LogLevel } from "../log/logger.ts";
import { serve } from "../server/serve.ts";
import { intOption, parseArgs } from "./args.ts";

/** Usage text of `serve`. */
export const SERVE_USAGE = `usage: execbridge serve [options]

  --listen URL                  ws://IP:PORT (default ws://127.0.0.1:0) or stdio
  --token-file FILE             require this bearer token (else EXECBRIDGE_TOKEN, if set)
  --session-ttl-ms N            keep a detached session this long (default 30000)
  --process-retention-ms N      keep a closed process readable this long (default 30000)
  --max-sessions N              (default 256)
  --max-processes N             live processes in all (default 4096)
  --max-processes-per-session N (default 1024)
  --max-pending-requests N      requests in flight per connection (default 1024)
  --warm-workers N              pre-started process workers (default 2)
  --log-level LEVEL             error | warn | info | debug (default info)
`;

const LEVELS: readonly string[] = ["error", "warn", "info", "debug"];

/** Runs `serve`; resolves with the exit code once the executor stopped. */
export async function serveCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: [
      "listen",
      "token-file",
      "session-ttl-ms",
      "process-retention-ms",
      "max-sessions",
      "max-processes",
      "max-processes-per-session",
      "max-pending-requests",
      "warm-workers",
      "log-level",
    ],
    boolean: ["help"],
  });
  if (parsed.flags.has("help")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const logLevel = parsed.strings.get("log-level") ?? "info";
  if (!LEVELS.includes(logLevel)) {
    throw new Error(`--log-level must be one of ${LEVELS.join(", ")}, got ${logLevel}`);
  }
  const tokenFile = parsed.strings.get("token-file");
  let token: string | null = null;
  if (tokenFile !== undefined) {
    token = (await Deno.readTextFile(tokenFile)).trim();
    if (token === "") throw new Error(`the token file ${tokenFile} is empty`);
  } else {
    token = Deno.env.get("EXECBRIDGE_TOKEN") || null;
  }
  const executor = await serve({
    listen: parsed.strings.get("listen"),
    token,
    sessionTtlMs: intOption(parsed, "session-ttl-ms"),
    processRetentionMs: intOption(parsed, "process-retention-ms"),
    maxSessions: intOption(parsed, "max-sessions"),
    maxProcesses: intOption(parsed, "max-processes"),
    maxProcessesPerSession: intOption(parsed, "max-processes-per-session"),
    maxPendingRequests: intOption(parsed, "max-pending-requests"),
    warmWorkers: intOption(parsed, "warm-workers"),
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
  await executor.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
