// The example app: answers every request with its version and uptime.
const http = require("http");
const port = process.env.PORT || 3000;
const started = Date.now();
http
  .createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("ok\n");
    }
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`hello from JeCloud (release ${process.env.JECLOUD_VERSION || "dev"}, up ${Math.round((Date.now() - started) / 1000)} s)\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));
