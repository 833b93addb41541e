/**
 * `serve`: runs an executor until SIGINT/SIGTERM (or, in stdio mode, until
 * stdin ends). The bound URL is the first line of stdout; logs go to stderr.
 *
 * @module
 */

import { LOG_LEVELS, parseLogLevel } from "../log/logger.ts";
import { type LimitName, limitsUsage, SERVE_LIMITS, type ServeLimits } from "../server/defaults.ts";
import { serve } from "../server/serve.ts";
import { readTokenFile, TOKEN_ENV } from "../auth/token.ts";
import { readEnv } from "../util/env.ts";
import { intOption, parseArgs, type ParsedArgs } from "./args.ts";

/** Usage text of `serve`: the fixed options, then every limit from the defaults table. */
export const SERVE_USAGE = `usage: execbridge serve [options]

  --listen URL                    ws://IP:PORT (default ws://127.0.0.1:0) or stdio
  --token-file FILE               the bearer token clients must send (mode 0600); else
                                  EXECBRIDGE_TOKEN; else the default token file
                                  \${XDG_STATE_HOME:-~/.local/state}/execbridge/token (created)
  --no-auth                       no token (only on a loopback address)
  --tls-cert FILE --tls-key FILE  serve wss:// with this PEM certificate and key
  --allow-origin ORIGIN           a browser origin allowed to connect (repeatable; none by default)
  --allow-host NAME               a host name accepted in the Host header (repeatable)
  --exit-on-stdin-close           stop (killing every process) when stdin ends
  --log-level LEVEL               ${LOG_LEVELS.join(" | ")} (default info)

limits:
${limitsUsage(34)}`;

/** Runs `serve`; resolves with the exit code once the executor stopped. */
export async function serveCommand(args: readonly string[]): Promise<number> {
  const parsed = parseArgs(args, {
    string: [
      "listen",
      "token-file",
      "tls-cert",
      "tls-key",
      "log-level",
      ...Object.values(SERVE_LIMITS).map((limit) => limit.flag),
    ],
    multiple: ["allow-origin", "allow-host"],
    boolean: ["help", "no-auth", "exit-on-stdin-close"],
  });
  if (parsed.flags.has("help")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const logLevel = parseLogLevel(parsed.strings.get("log-level"), "info");
  const noAuth = parsed.flags.has("no-auth");
  const tokenFile = parsed.strings.get("token-file");
  if (noAuth && tokenFile !== undefined) throw new Error("--no-auth and --token-file conflict");
  let token: string | undefined;
  if (!noAuth) {
    token = tokenFile !== undefined
      ? await readTokenFile(tokenFile, { requirePrivate: true })
      : readEnv(TOKEN_ENV);
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
    ...limitOptions(parsed),
    logLevel,
  });
  if (executor.url !== "stdio") {
    await Deno.stdout.write(new TextEncoder().encode(executor.url + "\n"));
  }
  const stop = () => {
    executor.close();
  };
  // SIGTERM drains (with --drain-timeout-ms); a second one, or SIGINT, stops at once.
  let terminated = false;
  const terminate = () => {
    if (terminated) stop();
    terminated = true;
    executor.drain();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", terminate);
  if (parsed.flags.has("exit-on-stdin-close") && executor.url !== "stdio") {
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* discard */ }
      stop();
    })();
  }
  await executor.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", terminate);
  return 0;
}

/** The limits given on the command line (the others keep their defaults). */
function limitOptions(parsed: ParsedArgs): Partial<ServeLimits> {
  const limits: Partial<ServeLimits> = {};
  for (const [name, spec] of Object.entries(SERVE_LIMITS) as [LimitName, { flag: string }][]) {
    const value = intOption(parsed, spec.flag);
    if (value !== undefined) limits[name] = value;
  }
  return limits;
}
