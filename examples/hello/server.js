// The example app, following JeCloud's contract for zero-downtime deploys:
// - listen on the socket systemd hands over (fd 3, when LISTEN_FDS is set),
//   else on $PORT;
// - on SIGTERM stop accepting, finish the requests in flight, then exit.
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

process.on("SIGTERM", () => {
  console.log("SIGTERM: draining");
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 20000).unref();
});
