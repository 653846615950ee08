// A stand-in for MercadoPago's payments API for ops/bench/mercadopago-confirm.sh, and the
// signer of the notifications the benchmark sends.
//
//   node ops/bench/fake-mercadopago.js serve <port>
//     Answers GET /v1/payments/<n> with an approved ARS payment of 255.00 whose
//     external_reference is MPB-<n>: the deposit of the pre-reservation the benchmark made
//     for slot n (see docs/bench/mercadopago-confirm-setup.sql). The fields are the ones
//     backend/src/mercadopago.rs reads, as MercadoPago documents the payment resource
//     ("Obtener pago", GET https://api.mercadopago.com/v1/payments/{id}):
//     https://mercadopago.com.mx/developers/es/reference/payments/_payments_id/get
//
//   MERCADOPAGO_WEBHOOK_SECRET=... node ops/bench/fake-mercadopago.js sign <first> <count>
//     Prints one line per payment n in first..first+count-1: `n request-id x-signature`, the
//     x-signature signed now over `id:<n>;request-id:<request-id>;ts:<ts>;` as
//     backend/src/http/webhooks/mercadopago.rs verifies it (the template MercadoPago's
//     notifications page describes for the secret signature:
//     https://mercadopago.com.ar/developers/en/docs/order/online-payments/notifications).
//     The secret comes from the environment, never from the command line.
"use strict";
const http = require("http");
const crypto = require("crypto");

const [mode, a, b] = process.argv.slice(2);
if (mode === "serve") {
  const port = Number(a);
  http
    .createServer((req, res) => {
      const m = /^\/v1\/payments\/([0-9]+)$/.exec(req.url);
      if (req.method !== "GET" || !m) {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.stringify({
        id: Number(m[1]),
        status: "approved",
        external_reference: "MPB-" + m[1],
        transaction_amount: 255.0,
        currency_id: "ARS",
      });
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    })
    .listen(port, "127.0.0.1");
} else if (mode === "sign") {
  const secret = process.env.MERCADOPAGO_WEBHOOK_SECRET;
  if (!secret) {
    console.error("set MERCADOPAGO_WEBHOOK_SECRET to the service's webhook secret");
    process.exit(2);
  }
  const first = Number(a), count = Number(b);
  const ts = Math.floor(Date.now() / 1000);
  const out = [];
  for (let n = first; n < first + count; n++) {
    const rid = "bench-" + n + "-" + ts;
    const v1 = crypto.createHmac("sha256", secret).update(`id:${n};request-id:${rid};ts:${ts};`).digest("hex");
    out.push(`${n} ${rid} ts=${ts},v1=${v1}`);
  }
  process.stdout.write(out.join("\n") + "\n");
} else {
  console.error("usage: fake-mercadopago.js serve <port> | sign <first> <count>");
  process.exit(2);
}
