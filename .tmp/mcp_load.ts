import { Client } from "@modelcontextprotocol/sdk/client";
import { connectExecutor, ExecutorStdioServerLauncher } from "../mod.ts";
import { silentLogger } from "../src/log/logger.ts";
const M = new URL("../tests/e2e/node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url).pathname;
const c = await connectExecutor(Deno.args[0]);
const t = await new ExecutorStdioServerLauncher(c, { log: silentLogger }).launch({ command: "node", args: [M, "stdio"] });
const client = new Client({ name: "b", version: "1" });
await client.connect(t);
const end = Date.now() + Number(Deno.args[1] ?? 8) * 1000;
const lat: number[] = [];
while (Date.now() < end) { const s = performance.now(); await client.callTool({ name: "echo", arguments: { message: "hello" } }); lat.push(performance.now() - s); }
lat.sort((a, b) => a - b); console.log("n", lat.length, "p50", lat[lat.length >> 1].toFixed(3));
await client.close(); await t.close(); await c.close();
