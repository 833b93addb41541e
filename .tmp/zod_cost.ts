import { writeParams, envelopeSchema, notifications } from "../src/protocol/schemas.ts";
const p = { processId: "mcp-stdio-1", chunk: btoa("x".repeat(100)) };
const env = { jsonrpc: "2.0", method: "process/output", params: { processId: "x", seq: 1, stream: "stdout", chunk: "aGVsbG8=" } };
for (const [name, fn] of [["writeParams", () => writeParams.safeParse(p)], ["envelope", () => envelopeSchema.safeParse(env)], ["output", () => notifications.output.safeParse(env.params)], ["JSON.parse", () => JSON.parse(JSON.stringify(env))]] as const) {
  for (let i = 0; i < 20000; i++) fn();
  const t = performance.now(); for (let i = 0; i < 100000; i++) fn(); console.log(name, ((performance.now() - t) * 10).toFixed(2), "ns/op");
}
