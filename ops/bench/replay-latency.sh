#!/bin/bash
# A replayed write's added latency: two release services on one throwaway PostgreSQL 15
# cluster (fsync on), a primary (FLY_REGION=PRIMARY_REGION=scl) and a machine outside the
# primary region (FLY_REGION=gru), which answers every write with `fly-replay: region=scl`
# (backend/src/http/replay.rs). A small proxy (ops/bench/replay-proxy.js) does what Fly's
# proxy does with that answer. wrk sends pre-reserves (docs/bench/prereserve.lua) through
# the proxy entering at the primary (direct) and at the other region (replayed), interleaved
# three times; prints per run req/s and latency p50/p99, then min/median/max and the added
# p50/p99 (replayed minus direct, same round). Both paths pass the same proxy, so the
# difference is the other machine's answer and the second hop; loopback, so no network
# distance between regions is in it.
#
#   cargo build --release -p backend --bin cabanas
#   ops/bench/replay-latency.sh
#
# Environment: CABANAS (the service binary, default target/release/cabanas), DURATION
# (seconds per run, default 10), CONNECTIONS (wrk's, default 8: a latency, not a ceiling).
# Needs: PostgreSQL 15 server binaries in /usr/lib/postgresql/15/bin (PG_BIN), psql, wrk,
# node, curl; as root, a `postgres` user to own the cluster.
set -euo pipefail
WT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
source "$WT/ops/bench/lib.sh"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
bench_start replay-bench

bench_database
BASE_ENV=(DATABASE_URL="$URL" JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop
  ADMIN_ALLOWED_EMAILS=ops@example.com RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0
  BOOKING_HORIZON_DAYS=36500 DATABASE_MAX_CONNECTIONS=16 PRIMARY_REGION=scl)
for step in migrate seed-demo; do env "${BASE_ENV[@]}" "$BIN" $step >> "$B/migrate.log" 2>&1; done
psql "$URL" -q -v ON_ERROR_STOP=1 -f "$WT/docs/bench/prereserve-setup.sql" > /dev/null

start_service "$BIN" "${BASE_ENV[@]}" FLY_REGION=scl
PRIMARY=$SERVICE_URL
start_service "$BIN" "${BASE_ENV[@]}" FLY_REGION=gru
AWAY=$SERVICE_URL
start_proxy() {
  local port
  port=$(free_port)
  node "$WT/ops/bench/replay-proxy.js" "$port" "$1" "$2" scl "$PRIMARY" > "$B/proxy-$2.log" 2>&1 &
  BENCH_PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/v1/readyz" 2> /dev/null && break
    sleep 0.1
  done
  PROXY_URL=http://127.0.0.1:$port
}
start_proxy "$PRIMARY" scl
DIRECT=$PROXY_URL
start_proxy "$AWAY" gru
REPLAYED=$PROXY_URL
# The machine outside the primary region must ask for the replay, and the proxy must follow it.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d '{}' \
  "$AWAY/api/v1/reservations/pre-reserve")
[ "$code" = 409 ] || { echo "the gru machine answered $code to a write, not 409 with fly-replay" >&2; exit 1; }

# p50 or p99 of a wrk --latency log, in milliseconds.
percentile() {
  awk -v p="$1" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
    printf "%.2f\n", v }' "$2"
}
declare -A p50 p99 rates
added50=() added99=()
for round in 1 2 3; do
  for path in direct replayed; do
    psql "$URL" -qc "TRUNCATE reservations, idempotency_keys CASCADE"
    target=$DIRECT
    [ "$path" = replayed ] && target=$REPLAYED
    CABINS=30 WRK_THREADS=2 wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
      -s "$WT/docs/bench/prereserve.lua" "$target" > "$B/wrk.log" 2>&1
    if grep '^status ' "$B/wrk.log" | grep -v '^status 201:' > /dev/null; then
      echo "round $round $path: a status other than 201:" >&2
      cat "$B/wrk.log" >&2
      exit 1
    fi
    a=$(percentile 50% "$B/wrk.log") b=$(percentile 99% "$B/wrk.log")
    r=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$B/wrk.log")
    p50[$path]+="$a " p99[$path]+="$b " rates[$path]+="$r "
    echo "round $round $path: $r req/s, p50 $a ms, p99 $b ms"
  done
  read -ra d50 <<< "${p50[direct]}"
  read -ra r50 <<< "${p50[replayed]}"
  read -ra d99 <<< "${p99[direct]}"
  read -ra r99 <<< "${p99[replayed]}"
  i=$((round - 1))
  added50+=("$(awk -v a="${r50[$i]}" -v b="${d50[$i]}" 'BEGIN { printf "%.2f", a - b }')")
  added99+=("$(awk -v a="${r99[$i]}" -v b="${d99[$i]}" 'BEGIN { printf "%.2f", a - b }')")
done
echo
echo "min/median/max of 3 interleaved rounds (${DURATION}s each, $CONNECTIONS connections, pre-reserve):"
for path in direct replayed; do
  # shellcheck disable=SC2086
  echo "  $path: req/s $(mmm ${rates[$path]}); p50 ms $(mmm ${p50[$path]}); p99 ms $(mmm ${p99[$path]})"
done
echo "  added by the replay (same round): p50 ms $(mmm "${added50[@]}"); p99 ms $(mmm "${added99[@]}")"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
