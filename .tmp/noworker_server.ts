// A minimal "executor" that runs cat in the main thread: ws text frame in -> cat stdin; cat stdout -> ws binary out.
const cat = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
const w = cat.stdin.getWriter();
let sock: WebSocket | null = null;
(async () => { for await (const chunk of cat.stdout) sock?.send(chunk); })();
Deno.serve({ port: 8795, hostname: "127.0.0.1", onListen() { console.log("ready"); } }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  sock = socket;
  socket.onmessage = (e) => { const m = JSON.parse(e.data); w.write(Uint8Array.fromBase64(m.params.chunk)); };
  return response;
});
