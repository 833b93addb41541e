// Usage: deno run -A .tmp/cdp_profile.ts <inspector-port> <seconds> <out.json> [targetIndex]
const [port, seconds, out, index] = Deno.args;
const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
console.error(targets.map((t: any) => t.title + " " + t.url).join("\n"));
const target = targets[Number(index ?? 0)];
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => ws.onopen = r);
let id = 0;
const pending = new Map<number, (v: any) => void>();
ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.id && pending.has(m.id)) { pending.get(m.id)!(m.result); pending.delete(m.id); } };
const call = (method: string, params: any = {}) => new Promise<any>((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: 50 });
await call("Profiler.start");
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { profile } = await call("Profiler.stop");
await Deno.writeTextFile(out, JSON.stringify(profile));
// summarize self time
const nodes = new Map<number, any>(); for (const n of profile.nodes) nodes.set(n.id, n);
const self = new Map<number, number>();
const dts = profile.timeDeltas; const samples = profile.samples;
for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (dts[i] ?? 0));
const byFn = new Map<string, number>();
let total = 0;
for (const [nid, t] of self) { const n = nodes.get(nid); const cf = n.callFrame; const key = `${cf.functionName || "(anon)"} ${cf.url.split("/").slice(-2).join("/")}:${cf.lineNumber}`; byFn.set(key, (byFn.get(key) ?? 0) + t); total += t; }
const top = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30);
for (const [k, t] of top) console.log((t / 1000).toFixed(1).padStart(8), "ms", (100 * t / total).toFixed(1).padStart(5), "%", k);
ws.close();
