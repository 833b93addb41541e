import { connectExecutor, type ExecBackend, LocalExecBackend } from "../mod.ts";
function pct(a: number[], p: number) {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(p * s.length)];
}
const data = new Uint8Array(100).fill(97);
async function viaBackend(name: string, backend: ExecBackend) {
  const p = await backend.start({
    processId: "cat" + Math.random(),
    argv: ["cat"],
    pipeStdin: true,
  });
  const it = p.events();
  const lat: number[] = [];
  for (let i = 0; i < 1200; i++) {
    const t = performance.now();
    p.send(data);
    let got = 0;
    while (got < 100) {
      const e = (await it.next()).value;
      if (e.type === "output") got += e.chunk.byteLength;
    }
    if (i >= 200) lat.push(performance.now() - t);
  }
  console.log(name.padEnd(8), "p50", pct(lat, .5).toFixed(3), "p99", pct(lat, .99).toFixed(3));
  await p.terminate();
}
async function direct() {
  const c = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
  const w = c.stdin.getWriter();
  const r = c.stdout.getReader();
  const lat: number[] = [];
  for (let i = 0; i < 1200; i++) {
    const t = performance.now();
    await w.write(data);
    let got = 0;
    while (got < 100) got += (await r.read()).value!.byteLength;
    if (i >= 200) lat.push(performance.now() - t);
  }
  console.log("direct  ", "p50", pct(lat, .5).toFixed(3), "p99", pct(lat, .99).toFixed(3));
  await w.close();
  r.releaseLock();
  await c.stdout.cancel();
  await c.status;
}
await direct();
const local = new LocalExecBackend();
await viaBackend("local", local);
await local.close();
if (Deno.args[0]) {
  const c = await connectExecutor(Deno.args[0]);
  await viaBackend("remote", c);
  await c.close();
}
