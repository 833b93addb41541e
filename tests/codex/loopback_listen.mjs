// Runs a Node server script so that it listens on 127.0.0.1 only, and prints
// `INTEROP_LISTENING <port>` on stdout once it does: `app.listen(PORT)` in
// server-everything's streamableHttp mode would listen on every interface,
// and with PORT=0 it never says which port it got.
//
// usage: node loopback_listen.mjs SCRIPT [ARGS…]
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const port = Number(args[0]);
    const callbacks = args.slice(1).filter((arg) => typeof arg === "function");
    this.once("listening", () => console.log(`INTEROP_LISTENING ${this.address().port}`));
    return listen.call(this, port, "127.0.0.1", ...callbacks);
  }
  return listen.apply(this, args);
};

// The script sees its own arguments where it expects them (process.argv.slice(2)).
const script = process.argv.splice(2, 1)[0];
await import(script);
