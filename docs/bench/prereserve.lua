-- wrk script: non-conflicting pre-reserves against the service, one request per booking.
--
-- How the benchmark runs it (the service started with RATE_LIMIT_PER_MINUTE=0, so the
-- per-client limit does not answer 429, BOOKING_HORIZON_DAYS=36500, so there are enough
-- nights to book, and on PostgreSQL DATABASE_MAX_CONNECTIONS=32, the connections pgbench's
-- `-c 32` gets (the default pool is 10); after docs/bench/prereserve-setup.sql, with
-- `TRUNCATE reservations, idempotency_keys;` between runs):
--
--   CABINS=<n> wrk -t2 -c32 -d<secs>s -s docs/bench/prereserve.lua <service url>
--
-- Environment:
--   CABINS                number of accommodations to spread over, ids 1..CABINS (default 3)
--   BOOKING_HORIZON_DAYS  the service's horizon, in days (default 36500); stays end within it
--   WRK_THREADS           the -t value (default 2); a thread beyond it stops the run, since
--                         its bookings would collide with another thread's
--
-- Each request books one night, back to back with no gaps: thread t's k-th request takes slot
-- s = k * WRK_THREADS + t, which books accommodation (s % CABINS) + 1 for the night starting
-- 1 + floor(s / CABINS) days after today (UTC). Slots never repeat, so no two requests
-- overlap and no thread coordinates with another. A run has (BOOKING_HORIZON_DAYS - 2) *
-- CABINS slots; past that the nights wrap around and collide (409), which shows in the status
-- counts printed at the end (and in wrk's "Non-2xx" line). No Idempotency-Key is sent, so the
-- service runs the statement docs/bench/prereserve.pgbench measures.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")
function init(args)
  counter = 0
  cabins = tonumber(os.getenv("CABINS") or "3")
  horizon = tonumber(os.getenv("BOOKING_HORIZON_DAYS") or "36500")
  if cabins == nil or cabins < 1 then error("CABINS must be a positive whole number") end
  if horizon == nil or horizon < 3 then error("BOOKING_HORIZON_DAYS must be at least 3") end
  nights = horizon - 2
  today = math.floor(os.time() / 86400) * 86400
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local slot = counter * stride + id
  counter = counter + 1
  local accommodation = (slot % cabins) + 1
  local night = 1 + (math.floor(slot / cabins) % nights)
  local check_in = os.date("!%Y-%m-%d", today + night * 86400)
  local check_out = os.date("!%Y-%m-%d", today + (night + 1) * 86400)
  local body = string.format('{"accommodation_id":%d,"check_in":"%s","check_out":"%s","guests":1,"channel":"web","contact_name":"Bench Guest","contact_phone":"+56911111111"}', accommodation, check_in, check_out)
  return wrk.format(nil, "/api/v1/reservations/pre-reserve", nil, body)
end
function done(summary, latency, requests)
  print_tally("statuses", "status %d: %d\n")
  io.write(string.format("non-2xx or socket errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
