-- wrk script: signed MercadoPago payment notifications, one per pre-reservation, each
-- confirming it (the service reads the payment back from the fake API of
-- ops/bench/fake-mercadopago.js). Run by ops/bench/mercadopago-confirm.sh:
--
--   SIGNED=<file> WRK_THREADS=2 wrk -t2 -c32 -d<secs>s -s docs/bench/mercadopago-confirm.lua <service url>
--
-- Environment:
--   SIGNED       the file `fake-mercadopago.js sign` printed: `n request-id x-signature` per
--                line, signed less than WEBHOOK_TOLERANCE_SECONDS (300) before the run
--   WRK_THREADS  the -t value (default 2): thread t sends lines t+1, t+1+WRK_THREADS, ...
--
-- Lines never repeat: once a thread has sent all of its lines it sends its first again,
-- which the service answers `duplicate`; the outcome counts printed at the end show it, and
-- the driving script refuses a run with any outcome but `confirmed`.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")
function init(args)
  local path = os.getenv("SIGNED") or error("set SIGNED to the file of signed notifications")
  requests = {}
  local i = 0
  for line in io.lines(path) do
    if i % stride == id then
      local n, rid, sig = line:match("^(%d+) (%S+) (%S+)$")
      local body = string.format('{"action":"payment.updated","type":"payment","data":{"id":"%s"}}', n)
      local headers = { ["Content-Type"] = "application/json", ["x-request-id"] = rid, ["x-signature"] = sig }
      table.insert(requests, wrk.format("POST", "/api/v1/webhooks/mercadopago?data.id=" .. n .. "&type=payment", headers, body))
    end
    i = i + 1
  end
  if #requests == 0 then error("no signed notifications for thread " .. id .. " in " .. path) end
  counter = 0
  outcomes = {}
end
function request()
  counter = counter + 1
  return requests[(counter - 1) % #requests + 1]
end
function response(status, headers, body)
  local outcome = body:match('"outcome":"([%w_]+)"') or ("http_" .. status)
  outcomes[outcome] = (outcomes[outcome] or 0) + 1
end
function done(summary, latency, requests)
  print_tally("outcomes", "outcome %s: %d\n")
  io.write(string.format("socket errors: %d\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
