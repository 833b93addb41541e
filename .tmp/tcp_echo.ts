if (Deno.args[0] === "server") {
  const l = Deno.listen({ port: 8792, hostname: "127.0.0.1" });
  console.log("ready");
  for await (const c of l) {
    (async () => {
      const b = new Uint8Array(65536);
      while (true) {
        const n = await c.read(b);
        if (n === null) break;
        await c.write(b.subarray(0, n));
      }
    })();
  }
} else {
  const c = await Deno.connect({ port: 8792, hostname: "127.0.0.1" });
  c.setNoDelay(true);
  const b = new Uint8Array(65536);
  const msg = new Uint8Array(200);
  const lat: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t = performance.now();
    await c.write(msg);
    let got = 0;
    while (got < 200) got += (await c.read(b))!;
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  console.log("tcp rtt p50", lat[1500].toFixed(4), "p99", lat[2970].toFixed(4));
  c.close();
  // builtin websocket to ws server
  const ws = new WebSocket("ws://127.0.0.1:8791");
  await new Promise((r) => ws.onopen = r);
  let res: () => void = () => {};
  ws.onmessage = () => res();
  const l2: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      res = r;
      ws.send("x".repeat(200));
    });
    l2.push(performance.now() - t);
  }
  l2.sort((a, b) => a - b);
  console.log("builtin ws rtt p50", l2[1500].toFixed(4), "p99", l2[2970].toFixed(4));
  ws.close();
}
