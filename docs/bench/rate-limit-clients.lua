-- wrk script: unsigned MercadoPago notifications (POST /api/v1/webhooks/mercadopago with no
-- x-signature) from CLIENTS distinct client addresses, one `Fly-Client-IP` per request in
-- turn. The service refuses each with 401 after counting it against its client's budget
-- (backend/src/http/edge.rs, `limit_unauthenticated`): the cheapest route the per-client
-- limit guards, no database, so the limiter's own cost is a visible part of a request's.
-- Run by ops/bench/rate-limit-100k.sh:
--
--   CLIENTS=100000 WRK_THREADS=2 wrk -t2 -c32 -d<secs>s -s docs/bench/rate-limit-clients.lua <service url>
--
-- Environment:
--   CLIENTS      distinct addresses, 10.a.b.c from 1 upwards (default 100000; 1 is one client)
--   WRK_THREADS  the -t value (default 2): thread t sends clients t, t+WRK_THREADS, ...
--
-- The same script runs with the limiter on and off, so the header work is the same in both.
-- Status counts are printed at the end (401 expected; 429 means the limit was reached).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")
function init(args)
  clients = tonumber(os.getenv("CLIENTS") or "100000")
  if clients == nil or clients < 1 or clients > 16000000 then error("CLIENTS must be 1..16000000") end
  counter = 0
  wrk.method = "POST"
  wrk.path = "/api/v1/webhooks/mercadopago?data.id=1&type=payment"
  wrk.body = '{"type":"payment","data":{"id":"1"}}'
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local n = (counter * stride + id) % clients + 1
  counter = counter + 1
  wrk.headers["Fly-Client-IP"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format()
end
function done(summary, latency, requests)
  print_tally("statuses", "status %d: %d\n")
end
