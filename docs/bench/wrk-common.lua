-- What the wrk scripts here share (loaded with dofile from each): threads numbered 0..-t-1
-- so each draws its own slots, and the per-thread tallies summed and printed when the run is
-- done. WRK_THREADS must equal wrk's -t (default 2).
threads = {}
stride = tonumber(os.getenv("WRK_THREADS") or "2")
local next_id = 0
function setup(thread)
  if next_id >= stride then
    error(string.format("more wrk threads than WRK_THREADS=%d: set WRK_THREADS to the -t value", stride))
  end
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Answers counted by status in each thread (a script that counts something else defines its
-- own `response` after loading this file).
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Prints the table `name` every thread counted into (key -> count), summed over threads and
-- sorted by key, one `format` line per key.
function print_tally(name, format)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get(name) or {}) do
      total[key] = (total[key] or 0) + count
    end
  end
  local keys = {}
  for key in pairs(total) do table.insert(keys, key) end
  table.sort(keys)
  for _, key in ipairs(keys) do
    io.write(string.format(format, key, total[key]))
  end
end
