Deno.serve({
  port: 8791,
  hostname: "127.0.0.1",
  onListen() {
    console.log("ready");
  },
}, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});
