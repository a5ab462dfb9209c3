// The example app, following JeCloud's contract for zero-downtime deploys:
// - listen on the socket systemd hands over (fd 3, when LISTEN_FDS is set),
//   else on $PORT;
// - on SIGTERM stop accepting, finish the requests in flight, close the
//   keep-alive connections, then exit.
const http = require("http");

const started = Date.now();
const version = process.env.JECLOUD_VERSION || "dev";

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    return res.end("ok\n");
  }
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello from JeCloud (release ${version}, up ${Math.round((Date.now() - started) / 1000)} s)\n`);
});

if (process.env.LISTEN_FDS) {
  server.listen({ fd: 3 }, () => console.log(`release ${version} serving on the systemd socket`));
} else {
  const port = process.env.PORT || 3000;
  server.listen(port, () => console.log(`release ${version} listening on ${port}`));
}

// Draining (docs/node.md): close keep-alive connections after their next
// response, and connections that never sent a request after a second.
const waiting = new Set();
server.on("connection", (s) => { waiting.add(s); s.on("close", () => waiting.delete(s)); });
server.on("request", (req) => waiting.delete(req.socket));
process.on("SIGTERM", () => {
  console.log("SIGTERM: draining");
  server.prependListener("request", (req, res) => res.setHeader("connection", "close"));
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => waiting.forEach((s) => s.destroy()), 1000).unref();
  setTimeout(() => process.exit(0), 20000).unref();
});
