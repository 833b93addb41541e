/**
 * A small leveled logger that writes to stderr only: stdout belongs to
 * protocols (the executor's URL line, stdio JSON-RPC, a bridged MCP server).
 * Never pass secrets or environment values to it.
 *
 * @module
 */

/** The log levels, from the quietest. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * Reads a `--log-level` value: `fallback` when absent; throws naming the
 * allowed levels for anything else (a typo must not silence every log line).
 */
export function parseLogLevel(value: string | undefined, fallback: LogLevel): LogLevel {
  if (value === undefined) return fallback;
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new Error(
    `--log-level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`,
  );
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** Writes log lines. */
export interface Logger {
  /** Something failed. */
  error(message: string): void;
  /** Something is wrong but work goes on. */
  warn(message: string): void;
  /** Lifecycle events. */
  info(message: string): void;
  /** Details, argv included (never secrets). */
  debug(message: string): void;
  /** Whether `level` is written. */
  enabled(level: LogLevel): boolean;
}

const encoder = new TextEncoder();

/**
 * A logger writing `execbridge[<name>] <level>: <message>` lines to stderr.
 *
 * @example
 * ```ts
 * import { createLogger } from "./logger.ts";
 * const log = createLogger({ name: "serve", level: "info" });
 * log.info("listening");
 * ```
 */
export function createLogger(
  options: { name?: string; level?: LogLevel; write?: (line: string) => void } = {},
): Logger {
  const threshold = RANK[options.level ?? "info"];
  const prefix = options.name ? `execbridge[${options.name}]` : "execbridge";
  const write = options.write ?? ((line: string) => {
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr is gone; nothing useful left to do.
    }
  });
  const at = (level: LogLevel) => (message: string) => {
    if (RANK[level] <= threshold) write(`${prefix} ${level}: ${message}`);
  };
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    enabled: (level) => RANK[level] <= threshold,
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  enabled: () => false,
};
