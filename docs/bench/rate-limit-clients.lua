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
local threads = {}
local stride = tonumber(os.getenv("WRK_THREADS") or "2")
local next_id = 0
function setup(thread)
  if next_id >= stride then
    error(string.format("more wrk threads than WRK_THREADS=%d: set WRK_THREADS to the -t value", stride))
  end
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  clients = tonumber(os.getenv("CLIENTS") or "100000")
  if clients == nil or clients < 1 or clients > 16000000 then error("CLIENTS must be 1..16000000") end
  counter = 0
  statuses = {}
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
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
  end
  local keys = {}
  for status in pairs(total) do table.insert(keys, status) end
  table.sort(keys)
  for _, status in ipairs(keys) do
    io.write(string.format("status %d: %d\n", status, total[status]))
  end
end
