// A minimal stand-in for Fly's proxy for ops/bench/replay-latency.sh: every request goes to
// one entry machine; an answer carrying `fly-replay: region=<primary>` is not returned but
// the same request is sent again to the primary's machine with `fly-replay-src`, and that
// answer is returned, as https://fly.io/docs/networking/dynamic-request-routing/ describes
// (and xtask/src/localfly/replay.rs models). Only `region=` is honoured.
//
//   node ops/bench/replay-proxy.js <listen port> <entry url> <entry region> <primary region> <primary url>
//
// With the entry being the primary itself no answer asks for a replay, so the same proxy
// measures the direct path too.
"use strict";
const http = require("http");

const [port, entry, entryRegion, primaryRegion, primary] = process.argv.slice(2);
if (!primary) {
  console.error("usage: replay-proxy.js <listen port> <entry url> <entry region> <primary region> <primary url>");
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function send(base, req, body, extra) {
  return new Promise((resolve, reject) => {
    const url = new URL(req.url, base);
    const headers = { ...req.headers, ...extra, host: url.host, "content-length": body.length };
    const out = http.request(url, { method: req.method, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    out.on("error", reject);
    out.end(body);
  });
}

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      try {
        let answer = await send(entry, req, body, {});
        const replay = /(?:^|;)\s*region=([^;\s]+)/.exec(answer.headers["fly-replay"] || "");
        if (replay) {
          if (replay[1] !== primaryRegion) throw new Error("replay to unknown region " + replay[1]);
          const src = `instance=bench;region=${entryRegion};t=${Date.now() * 1000}`;
          answer = await send(primary, req, body, { "fly-replay-src": src });
        }
        delete answer.headers["transfer-encoding"];
        delete answer.headers["connection"];
        answer.headers["content-length"] = answer.body.length;
        res.writeHead(answer.status, answer.headers).end(answer.body);
      } catch (err) {
        res.writeHead(502, { "content-type": "text/plain" }).end("proxy: " + err.message + "\n");
      }
    });
  })
  .listen(Number(port), "127.0.0.1");
