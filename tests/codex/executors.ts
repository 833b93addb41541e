/**
 * The executors under test, started the same way for every scenario:
 *
 * - the reference: `codex exec-server --listen ws://127.0.0.1:0 --ws-auth
 *   capability-token --ws-token-file F` (Codex's own server checks
 *   `Authorization: Bearer <token>` against the file's contents, which is
 *   what Codex sends from `auth_bearer_token`), or `--listen stdio`;
 * - execbridge: `EXECBRIDGE_INTEROP_URL` / `EXECBRIDGE_INTEROP_TOKEN` when
 *   set, else `deno run -A --config deno.json mod.ts serve --token-file F`
 *   (or `--listen stdio`), the way tests/support/executor_process.ts does.
 *   `EXECBRIDGE_INTEROP_ROOT` points at another checkout to run instead of
 *   this one.
 *
 * Each executor runs in a fresh temporary directory (its cwd; the reference
 * also gets its own CODEX_HOME there) with `INTEROP_EXECUTOR_ONLY` set in its
 * environment (the env-rules scenario reads it back through `env_vars`
 * with `source = "remote"`).
 *
 * @module
 */

import { GroupProcess, HOMES_ROOT, tempDir } from "./processes.ts";

/** The checkout whose `mod.ts serve` is the execbridge executor. */
export const EXECBRIDGE_ROOT = Deno.env.get("EXECBRIDGE_INTEROP_ROOT") ??
  new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A variable only the executors' environment has. */
export const EXECUTOR_ONLY_VAR = "INTEROP_EXECUTOR_ONLY";
export const EXECUTOR_ONLY_VALUE = "set-on-the-executor";

/** Which implementation. */
export type ExecutorKind = "reference" | "execbridge";

/** A running WebSocket executor. */
export interface WsExecutor {
  kind: ExecutorKind;
  /** `ws://…` */
  url: string;
  /** The bearer token it wants (undefined: none). */
  token?: string;
  /** Its working directory (and the reference's CODEX_HOME parent). */
  dir: string;
  /** Paths that appear in its answers and differ between runs (for normalizing). */
  paths: Record<string, string>;
  /** Its stderr so far ("" for an external executor). */
  stderr(): string;
  /** Stops it and removes its directory (no-op for an external executor). */
  stop(): Promise<void>;
}

/** A running stdio executor: one connection over its stdin/stdout. */
export interface StdioExecutor {
  kind: ExecutorKind;
  process: GroupProcess;
  dir: string;
  paths: Record<string, string>;
  stop(): Promise<void>;
}

function executorEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { [EXECUTOR_ONLY_VAR]: EXECUTOR_ONLY_VALUE, RUST_LOG: "warn", ...extra };
}

/** Starts `codex exec-server` on a WebSocket with a capability token. */
export async function startReferenceWs(codex: string): Promise<WsExecutor> {
  // Not under /tmp: see HOMES_ROOT (the reference runs the sandbox helper from its CODEX_HOME).
  const dir = await tempDir("ref", HOMES_ROOT);
  const token = `ref-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${dir.path}/token`, token, { mode: 0o600 });
  await Deno.mkdir(`${dir.path}/codex-home`);
  const process = new GroupProcess(
    "codex exec-server",
    codex,
    [
      "exec-server",
      "--listen",
      "ws://127.0.0.1:0",
      "--ws-auth",
      "capability-token",
      "--ws-token-file",
      `${dir.path}/token`,
    ],
    {
      env: executorEnv({ CODEX_HOME: `${dir.path}/codex-home` }),
      unsetEnv: ["CODEX_EXEC_SERVER_URL"],
      cwd: dir.path,
    },
  );
  try {
    const url = await process.waitForLine((line) => line.startsWith("ws://"), 60_000);
    return {
      kind: "reference",
      url,
      token,
      dir: dir.path,
      paths: { [dir.path]: "<EXECUTOR_DIR>" },
      stderr: () => process.stderr(),
      stop: async () => {
        await process.stop();
        await dir.remove();
      },
    };
  } catch (error) {
    await process.stop();
    await dir.remove();
    throw error;
  }
}

function execbridgeArgs(listen: string[], tokenFile: string | null): string[] {
  return [
    "run",
    "-A",
    "--config",
    `${EXECBRIDGE_ROOT}/deno.json`,
    `${EXECBRIDGE_ROOT}/mod.ts`,
    "serve",
    ...listen,
    ...(tokenFile === null ? [] : ["--token-file", tokenFile]),
    "--log-level",
    "warn",
  ];
}

/** The execbridge executor: the one named by the environment, or a new `serve`. */
export async function startExecbridgeWs(): Promise<WsExecutor> {
  const external = Deno.env.get("EXECBRIDGE_INTEROP_URL");
  if (external) {
    return {
      kind: "execbridge",
      url: external,
      token: Deno.env.get("EXECBRIDGE_INTEROP_TOKEN") || undefined,
      dir: "",
      paths: {},
      stderr: () => "",
      stop: () => Promise.resolve(),
    };
  }
  const dir = await tempDir("exb");
  const token = `exb-${crypto.randomUUID()}`;
  await Deno.writeTextFile(`${dir.path}/token`, token, { mode: 0o600 });
  const process = new GroupProcess(
    "execbridge serve",
    Deno.execPath(),
    execbridgeArgs([], `${dir.path}/token`),
    { env: executorEnv(), unsetEnv: ["EXECBRIDGE_TOKEN"], cwd: dir.path },
  );
  try {
    const url = await process.waitForLine((line) => line.startsWith("ws"), 120_000);
    return {
      kind: "execbridge",
      url,
      token,
      dir: dir.path,
      paths: { [dir.path]: "<EXECUTOR_DIR>" },
      stderr: () => process.stderr(),
      stop: async () => {
        await process.stop();
        await dir.remove();
      },
    };
  } catch (error) {
    await process.stop();
    await dir.remove();
    throw error;
  }
}

/** Starts a WebSocket executor of `kind`. */
export function startWsExecutor(kind: ExecutorKind, codex: string): Promise<WsExecutor> {
  return kind === "reference" ? startReferenceWs(codex) : startExecbridgeWs();
}

/** Starts an executor of `kind` on its stdin/stdout (`--listen stdio`). */
export async function startStdioExecutor(
  kind: ExecutorKind,
  codex: string,
): Promise<StdioExecutor> {
  const dir = await tempDir(kind === "reference" ? "ref-stdio" : "exb-stdio", HOMES_ROOT);
  let process: GroupProcess;
  if (kind === "reference") {
    await Deno.mkdir(`${dir.path}/codex-home`);
    process = new GroupProcess("codex exec-server (stdio)", codex, [
      "exec-server",
      "--listen",
      "stdio",
    ], {
      env: executorEnv({ CODEX_HOME: `${dir.path}/codex-home` }),
      unsetEnv: ["CODEX_EXEC_SERVER_URL"],
      cwd: dir.path,
      stdin: true,
    });
  } else {
    process = new GroupProcess(
      "execbridge serve (stdio)",
      Deno.execPath(),
      execbridgeArgs(["--listen", "stdio"], null),
      {
        env: executorEnv(),
        cwd: dir.path,
        stdin: true,
      },
    );
  }
  return {
    kind,
    process,
    dir: dir.path,
    paths: { [dir.path]: "<EXECUTOR_DIR>" },
    stop: async () => {
      await process.stop();
      await dir.remove();
    },
  };
}
