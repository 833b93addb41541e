/**
 * MCP stdio servers through both launchers — a local child
 * (LocalStdioServerLauncher) and an executor process over a real `serve`
 * subprocess (ExecutorStdioServerLauncher) — plus the executor launcher over
 * LocalExecBackend (events through a worker MessagePort). The fixture server
 * is `tests/fixtures/test_mcp_server.ts`.
 */

import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport";
import { connectExecutor, LocalExecBackend } from "../mod.ts";
import { createLogger, type Logger } from "../src/log/logger.ts";
import { ExecutorStdioServerLauncher } from "../src/mcp/executor_stdio.ts";
import { LocalStdioServerLauncher, type StdioServerLauncher } from "../src/mcp/local_stdio.ts";
import type { StdioServerCommand } from "../src/mcp/stdio_command.ts";
import type {
  JsonRpcMessage,
  McpCallToolResult,
  McpServerTool,
  McpToolInputSchema,
  McpTransport,
} from "../src/mcp/types.ts";
import { startExecutor } from "./support/executor_process.ts";
import { waitGone } from "./support/processes.ts";
import { TEST_IMAGE_BASE64 } from "./fixtures/test_image.ts";
import {} from "./support/cli.ts";
import { fixtureServer } from "./support/cli.ts";

/** The fixture server as a stdio command. */
export function fixtureCommand(flags: string[] = [], extra: Partial<StdioServerCommand> = {}) {
  return { name: "fixture", ...fixtureServer(...flags), ...extra } satisfies StdioServerCommand;
}

interface Placement {
  name: string;
  remote: boolean;
  open(
    options: { log: Logger; callerEnv?: Record<string, string> },
  ): Promise<{ launcher: StdioServerLauncher; kill?(): Promise<void>; close(): Promise<void> }>;
}

const placements: Placement[] = [
  {
    name: "local child",
    remote: false,
    open({ log, callerEnv }) {
      const launcher = new LocalStdioServerLauncher({ log, graceMs: 300, callerEnv });
      return Promise.resolve({ launcher, close: () => Promise.resolve() });
    },
  },
  {
    name: "executor (remote)",
    remote: true,
    async open({ log, callerEnv }) {
      const executor = await startExecutor([]);
      const client = await connectExecutor(executor.url);
      const launcher = new ExecutorStdioServerLauncher(client, { log, graceMs: 300, callerEnv });
      return {
        launcher,
        kill: async () => {
          await executor.stop("SIGKILL");
        },
        async close() {
          await client.close();
          await executor.stop();
        },
      };
    },
  },
  {
    name: "executor (local backend)",
    remote: false,
    open({ log, callerEnv }) {
      const backend = new LocalExecBackend();
      const launcher = new ExecutorStdioServerLauncher(backend, { log, graceMs: 300, callerEnv });
      return Promise.resolve({ launcher, close: () => backend.close() });
    },
  },
];

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: createLogger({ name: "test", level: "debug", write: (l) => lines.push(l) }),
  };
}

async function connect(transport: Transport): Promise<Client> {
  const client = new Client({ name: "test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return content.filter((c) => c.type === "text").map((c) => c.text).join("");
}

function each(
  name: string,
  fn: (ctx: {
    placement: Placement;
    launcher: StdioServerLauncher;
    lines: string[];
    kill?: () => Promise<void>;
  }) => Promise<void>,
  options: { callerEnv?: Record<string, string>; only?: (p: Placement) => boolean } = {},
) {
  for (const placement of placements) {
    if (options.only && !options.only(placement)) continue;
    Deno.test(`mcp ${placement.name}: ${name}`, async () => {
      const { log, lines } = capture();
      const opened = await placement.open({ log, callerEnv: options.callerEnv });
      try {
        await fn({ placement, launcher: opened.launcher, lines, kill: opened.kill });
      } finally {
        await opened.close();
      }
    });
  }
}

each("echo round trip and tool list", async ({ launcher }) => {
  const transport = await launcher.launch(fixtureCommand());
  const client = await connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, [
    "big",
    "counter",
    "crash",
    "cwd",
    "echo",
    "env",
    "image",
    "pid",
    "session",
    "slow",
    "stats",
  ]);
  const result = await client.callTool({ name: "echo", arguments: { message: "ping" } });
  assert.equal(textOf(result), "ECHOING: ping");
  await client.close();
  await transport.close();
});

const CALLER_ENV = {
  PATH: "/caller/only/path",
  HOME: Deno.env.get("HOME") ?? "/root",
  COPIED_VAR: "copied-from-caller",
  NOT_LISTED: "must-not-arrive",
};

each(
  "env propagation: env literal, env_vars copied, nothing else",
  async ({ placement, launcher }) => {
    const transport = await launcher.launch(fixtureCommand([], {
      env: { MCP_TEST_VALUE: "literal" },
      envVars: ["COPIED_VAR"],
    }));
    const client = await connect(transport);
    const env = async (name: string) =>
      textOf(await client.callTool({ name: "env", arguments: { name } }));
    assert.equal(await env("MCP_TEST_VALUE"), "literal");
    assert.equal(await env("COPIED_VAR"), "copied-from-caller");
    assert.equal(await env("NOT_LISTED"), "null");
    // (Deno prepends its node_compat_bin folder to the PATH a Deno server sees.)
    const path = await env("PATH");
    if (placement.remote) {
      // PATH comes from the executor host, not from the caller.
      assert.ok(!path.includes("/caller/only/path"), path);
    } else {
      assert.ok(path.endsWith("/caller/only/path"), path);
    }
    await client.close();
    await transport.close();
  },
  { callerEnv: CALLER_ENV, only: (p) => p.name !== "executor (local backend)" },
);

each("configured cwd", async ({ launcher }) => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    const transport = await launcher.launch(fixtureCommand([], { cwd: dir }));
    const client = await connect(transport);
    assert.equal(textOf(await client.callTool({ name: "cwd", arguments: {} })), dir);
    await client.close();
    await transport.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

each("image content round trip", async ({ launcher }) => {
  const transport = await launcher.launch(fixtureCommand());
  const client = await connect(transport);
  const result = await client.callTool({ name: "image", arguments: {} });
  const content = result.content as { type: string; data?: string; mimeType?: string }[];
  const image = content.find((c) => c.type === "image");
  assert.equal(image?.data, TEST_IMAGE_BASE64);
  assert.equal(image?.mimeType, "image/png");
  await client.close();
  await transport.close();
});

each("a 3 MB result arrives intact", async ({ launcher }) => {
  const transport = await launcher.launch(fixtureCommand());
  const client = await connect(transport);
  const result = await client.callTool({ name: "big", arguments: { bytes: 3_000_000 } });
  const text = textOf(result);
  assert.equal(text.length, 3_000_000);
  assert.ok(/^x+$/.test(text));
  await client.close();
  await transport.close();
});

each(
  "junk stdout lines and stderr noise do not break the protocol",
  async ({ launcher, lines }) => {
    const transport = await launcher.launch(fixtureCommand(["--noise"]));
    const client = await connect(transport);
    const result = await client.callTool({ name: "echo", arguments: { message: "still" } });
    assert.equal(textOf(result), "ECHOING: still");
    await client.close();
    await transport.close();
    assert.ok(lines.some((l) => l.includes("not JSON") && l.includes("hello from a noisy server")));
    assert.ok(lines.some((l) => l.includes("MCP server stderr (fixture)")));
  },
);

each("a server that ignores SIGTERM is still gone after close", async ({ launcher }) => {
  const transport = await launcher.launch(fixtureCommand(["--ignore-sigterm"]));
  const client = await connect(transport);
  const pid = Number(textOf(await client.callTool({ name: "pid", arguments: {} })));
  assert.ok(pid > 0);
  await client.close();
  await transport.close();
  assert.ok(await waitGone(pid), `server ${pid} survived close`);
});

each("a server that exits on its own closes the transport", async ({ launcher }) => {
  const transport = await launcher.launch(fixtureCommand(["--exit-after-ms", "1500"]));
  const closed = new Promise<void>((resolve) => {
    const client = new Client({ name: "test", version: "1.0.0" });
    client.onclose = () => resolve();
    client.connect(transport)
      .then(() => client.callTool({ name: "slow", arguments: { ms: 60_000, label: "never" } }))
      .catch(() => {});
  });
  await closed;
  await transport.close();
});

each("the executor dying mid-call fails the pending call promptly", async ({ launcher, kill }) => {
  const transport = await launcher.launch(fixtureCommand());
  const client = await connect(transport);
  const errors: Error[] = [];
  transport.onerror = ((previous) => (error: Error) => {
    errors.push(error);
    previous?.(error);
  })(transport.onerror);
  const began = performance.now();
  const call = client.callTool({ name: "slow", arguments: { ms: 30_000, label: "x" } })
    .then(() => null, (error: Error) => error);
  await client.callTool({ name: "echo", arguments: { message: "alive" } });
  await kill!();
  assert.ok((await call) instanceof Error, "the pending call did not fail");
  assert.ok(performance.now() - began < 15_000, "the call waited for its own timeout");
  assert.ok(errors.some((e) => e.message.includes("exec-server transport disconnected")));
  await client.close();
  await transport.close();
}, { only: (p) => p.remote });

Deno.test("mcp local child: close() gives up on a server that stopped reading stdin", async () => {
  const { log } = capture();
  const launcher = new LocalStdioServerLauncher({ log, graceMs: 200 });
  // Not an MCP server at all: it never reads stdin, so a big write stays pending.
  const transport = await launcher.launch({
    name: "deaf",
    command: "sh",
    args: ["-c", "echo $$; exec sleep 30"],
  });
  await transport.start();
  const pending = transport.send({
    jsonrpc: "2.0",
    method: "notifications/message",
    params: { data: "x".repeat(2 * 1024 * 1024) },
  }).catch(() => {});
  await transport.close();
  await pending;
  const pid = (transport as unknown as { pid: number }).pid;
  assert.ok(await waitGone(pid), "the server outlived close()");
});

Deno.test("mcp types: execbridge's documented MCP types fit the SDK's (compile time)", () => {
  // Each assignment compiles only while the shapes stay compatible with the SDK's.
  type SdkTypes = typeof import("@modelcontextprotocol/sdk/types.js");
  type SdkMessage = import("zod").infer<SdkTypes["JSONRPCMessageSchema"]>;
  type SdkResult = import("zod").infer<SdkTypes["CallToolResultSchema"]>;
  type SdkTool = import("zod").infer<SdkTypes["ToolSchema"]>;
  const transport = null as unknown as McpTransport;
  const asSdkTransport: Transport = transport;
  const message: JsonRpcMessage = null as unknown as SdkMessage;
  const result: McpCallToolResult = null as unknown as SdkResult;
  const schema: McpToolInputSchema = null as unknown as SdkTool["inputSchema"];
  const tool: McpServerTool = null as unknown as SdkTool;
  assert.deepEqual([asSdkTransport, message, result, schema, tool], [null, null, null, null, null]);
});
