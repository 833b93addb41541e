import { Client } from "@modelcontextprotocol/sdk/client";
import {
  connectExecutor,
  ExecutorStdioServerLauncher,
  LocalStdioServerLauncher,
  serve,
} from "../mod.ts";
import { silentLogger } from "../src/log/logger.ts";
const M = new URL(
  "../tests/e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
  import.meta.url,
).pathname;
const cmd = { command: "node", args: [M, "stdio"] };
function pct(a: number[], p: number) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}
async function measure(name: string, transport: any) {
  const client = new Client({ name: "b", version: "1" });
  await client.connect(transport);
  for (let i = 0; i < 200; i++) {
    await client.callTool({ name: "echo", arguments: { message: "x" } });
  }
  const lat: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    await client.callTool({ name: "echo", arguments: { message: "hello" } });
    lat.push(performance.now() - t);
  }
  const big = "y".repeat(1_000_000);
  const bl: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await client.callTool({ name: "echo", arguments: { message: big } });
    bl.push(performance.now() - t);
  }
  console.log(
    `${name.padEnd(10)} p50 ${pct(lat, .5).toFixed(3)} p99 ${pct(lat, .99).toFixed(3)}  1MB p50 ${
      pct(bl, .5).toFixed(2)
    }`,
  );
  await client.close();
  await transport.close();
}
const which = Deno.args[0] ?? "all";
if (which === "all" || which === "direct") {
  await measure("direct", await new LocalStdioServerLauncher({ log: silentLogger }).launch(cmd));
}
if (which === "all" || which === "remote") {
  const ex = await serve({ noAuth: true, logLevel: "error" });
  const c = await connectExecutor(ex.url);
  await measure(
    "remote",
    await new ExecutorStdioServerLauncher(c, { log: silentLogger }).launch(cmd),
  );
  await c.close();
  await ex.close();
}
if (which === "sub") {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "mod.ts", "serve", "--no-auth", "--log-level", "error"],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  const url = new TextDecoder().decode(value).trim();
  const c = await connectExecutor(url);
  await measure(
    "subproc",
    await new ExecutorStdioServerLauncher(c, { log: silentLogger }).launch(cmd),
  );
  await c.close();
  child.kill();
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
}
