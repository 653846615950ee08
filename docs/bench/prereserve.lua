-- Non-conflicting pre-reserves: every request books its own one-night window.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  base = os.time() + 2 * 86400
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local slot = counter * 8 + id
  local accommodation = (slot % 3) + 1
  local day = math.floor(slot / 3) * 2
  local check_in = os.date("!%Y-%m-%d", base + day * 86400)
  local check_out = os.date("!%Y-%m-%d", base + (day + 1) * 86400)
  local body = string.format('{"accommodation_id":%d,"check_in":"%s","check_out":"%s","guests":1,"channel":"web","contact_name":"Bench Guest","contact_phone":"+56911111111"}', accommodation, check_in, check_out)
  return wrk.format(nil, "/api/v1/reservations/pre-reserve", nil, body)
end
local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  io.write(string.format("non-2xx or socket errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
