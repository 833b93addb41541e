import { LocalExecBackend } from "../mod.ts";
const b = new LocalExecBackend();
const state = new Map<number, string[]>();
const procs: any[] = [];
const all = Promise.all(Array.from({ length: 200 }, async (_, i) => {
  state.set(i, ["starting"]);
  const p = await b.start({ processId: "s" + i, argv: ["sh", "-c", "sleep 1; echo x"] });
  procs[i] = p;
  state.get(i)!.push("started");
  p.listen((e) => state.get(i)!.push(e.type));
  await p.wait();
  state.delete(i);
}));
await Promise.race([all, new Promise((r) => setTimeout(r, 8000))]);
for (const [i, s] of state) {
  console.log("stuck", i, s.join(","));
  const r = await Promise.race([procs[i]?.read({ waitMs: 0 }), new Promise((res) => setTimeout(() => res("read timed out"), 2000))]);
  console.log("read:", JSON.stringify(r, (k, v) => k === "chunk" ? undefined : v));
}
Deno.exit(0);
