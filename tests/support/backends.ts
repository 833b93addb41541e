/**
 * The two modes every process test runs in: `local` (LocalExecBackend, no
 * server) and `remote` (a real `serve` subprocess over WebSocket).
 */

import { connectExecutor, type ExecBackend, LocalExecBackend } from "../../mod.ts";
import type { ExecFileSystem } from "../../src/fs/file_system.ts";
import { LocalFileSystem } from "../../src/fs/local_file_system.ts";
import { startExecutor } from "./executor_process.ts";

/** An opened backend and how to close it. */
export interface OpenBackend {
  backend: ExecBackend;
  fs: ExecFileSystem;
  close(): Promise<void>;
}

/** Settings applied in both modes. */
export interface OpenOptions {
  /** How long closed processes stay readable. */
  retentionMs?: number;
  /** Extra `serve` flags (remote only). */
  serveArgs?: string[];
}

/** A way to open a backend. */
export interface BackendMode {
  name: "local" | "remote";
  open(options?: OpenOptions): Promise<OpenBackend>;
}

export const local: BackendMode = {
  name: "local",
  open(options = {}) {
    const backend = new LocalExecBackend({ processRetentionMs: options.retentionMs });
    return Promise.resolve({
      backend,
      fs: new LocalFileSystem(),
      close: () => backend.close(),
    });
  },
};

export const remote: BackendMode = {
  name: "remote",
  async open(options = {}) {
    const args = [...(options.serveArgs ?? [])];
    if (options.retentionMs !== undefined) {
      args.push("--process-retention-ms", String(options.retentionMs));
    }
    const executor = await startExecutor(args);
    const client = await connectExecutor(executor.url);
    return {
      backend: client,
      fs: client.fs,
      async close() {
        await client.close();
        await executor.stop();
      },
    };
  },
};

/** Both modes. */
export const modes: BackendMode[] = [local, remote];

/** Standard env for test processes. */
export const ENV: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };

/** Decodes and joins the output of a list of events or chunks. */
export function text(chunks: { chunk: Uint8Array }[]): string {
  const decoder = new TextDecoder();
  return chunks.map((c) => decoder.decode(c.chunk)).join("");
}
