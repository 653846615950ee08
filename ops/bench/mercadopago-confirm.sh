#!/bin/bash
# MercadoPago confirmations per second: signed payment notifications, each confirming one
# pre-reservation, sent with wrk to the release service (which reads every payment back from
# a fake MercadoPago API), against pgbench running the same SQL statements the service runs
# per confirmation (docs/bench/mercadopago-confirm.pgbench), on one throwaway PostgreSQL 15
# cluster with fsync on. Interleaved three times (pgbench, service, then pgbench held with
# -R to the rate the service just measured, ...): the database's CPU per confirmation grows
# as its rate falls (fewer commits share each WAL flush), so the service's share is also
# compared at its own rate. Prints per run the confirmations/s and the database CPU per
# confirmation (the postmaster tree's CPU from /proc, before and after), then
# min/median/max and the service/pgbench ratios.
#
#   cargo build --release -p backend --bin cabanas
#   ops/bench/mercadopago-confirm.sh
#
# Environment: CABANAS (the service binary, default target/release/cabanas), DURATION (seconds per run, default 10), CLIENTS (connections of wrk and pgbench,
# and the service's pool, default 32), BOOKINGS (pre-reservations made before each run,
# default 40000; a run that confirms them all is refused: raise it).
# Needs: PostgreSQL 15 server binaries in /usr/lib/postgresql/15/bin (PG_BIN), psql, pgbench,
# wrk, node, curl; as root, a `postgres` user to own the cluster.
set -euo pipefail
WT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
source "$WT/ops/bench/lib.sh"
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-32}
BOOKINGS=${BOOKINGS:-40000}
bench_start mp-bench

bench_database
BASE_ENV=(DATABASE_URL="$URL" JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop
  ADMIN_ALLOWED_EMAILS=ops@example.com RUST_LOG=warn)
env "${BASE_ENV[@]}" "$BIN" migrate > "$B/migrate.log" 2>&1

MP_PORT=$(free_port)
node "$WT/ops/bench/fake-mercadopago.js" serve "$MP_PORT" &
FAKE_PID=$!
BENCH_PIDS+=("$FAKE_PID")
export MERCADOPAGO_WEBHOOK_SECRET=bench-webhook-secret-$RANDOM$RANDOM
start_service "$BIN" "${BASE_ENV[@]}" RATE_LIMIT_PER_MINUTE=0 DATABASE_MAX_CONNECTIONS="$CLIENTS" \
  MERCADOPAGO_ACCESS_TOKEN=bench-token MERCADOPAGO_API_URL="http://127.0.0.1:$MP_PORT" \
  MERCADOPAGO_WEBHOOK_SECRET="$MERCADOPAGO_WEBHOOK_SECRET"
PM=$(postmaster_pid)

setup() {
  psql "$URL" -q -v ON_ERROR_STOP=1 -v bookings="$BOOKINGS" \
    -f "$WT/docs/bench/mercadopago-confirm-setup.sql" > /dev/null
}
confirmed() { psql "$URL" -Atc "SELECT count(*) FROM reservations WHERE status = 'confirmed'"; }

# pgbench_run NAME [pgbench options...]: the statements alone; sets `rate` and `cpu_ms`.
pgbench_run() {
  local name=$1
  shift
  setup
  local before after n
  before=$(tree_seconds "$PM")
  pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" "$@" \
    -f "$WT/docs/bench/mercadopago-confirm.pgbench" "$URL" > "$B/$name-$run.log" 2>&1
  after=$(tree_seconds "$PM")
  n=$(confirmed)
  [ "$n" -lt "$BOOKINGS" ] || { echo "pgbench confirmed every booking: raise BOOKINGS" >&2; exit 2; }
  rate=$(ratio "$n" "$DURATION" 1)
  cpu_ms=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
  echo "run $run $name: $n confirmed in ${DURATION}s = $rate/s; database CPU $cpu_ms ms per confirmation"
}

pg_rates=() svc_rates=() pg_cpu=() svc_cpu=() svc_own=() fake_own=() ratios=()
held_cpu=() held_ratios=()
for run in 1 2 3; do
  pgbench_run pgbench
  pg_rates+=("$rate") pg_cpu+=("$cpu_ms")

  # The service: signed notifications, one per booking, signed just before the run.
  setup
  node "$WT/ops/bench/fake-mercadopago.js" sign 1 "$BOOKINGS" > "$B/signed.txt"
  before=$(tree_seconds "$PM")
  service_before=$(process_seconds "$SERVICE_PID")
  fake_before=$(process_seconds "$FAKE_PID")
  SIGNED=$B/signed.txt WRK_THREADS=2 wrk -t2 -c"$CLIENTS" -d"${DURATION}s" \
    -s "$WT/docs/bench/mercadopago-confirm.lua" "$SERVICE_URL" > "$B/wrk-$run.log" 2>&1
  after=$(tree_seconds "$PM")
  service_after=$(process_seconds "$SERVICE_PID")
  fake_after=$(process_seconds "$FAKE_PID")
  if grep '^outcome ' "$B/wrk-$run.log" | grep -v '^outcome confirmed:' > /dev/null; then
    echo "run $run: the service answered something other than confirmed:" >&2
    cat "$B/wrk-$run.log" >&2
    exit 1
  fi
  n=$(confirmed)
  [ "$n" -lt "$BOOKINGS" ] || { echo "wrk confirmed every booking: raise BOOKINGS" >&2; exit 2; }
  rate=$(ratio "$n" "$DURATION" 1)
  cpu_ms=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
  own_ms=$(awk -v a="$service_before" -v b="$service_after" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
  fake_ms=$(awk -v a="$fake_before" -v b="$fake_after" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 / n }')
  svc_rates+=("$rate") svc_cpu+=("$cpu_ms") svc_own+=("$own_ms") fake_own+=("$fake_ms")
  ratios+=("$(ratio "$rate" "${pg_rates[-1]}")")
  echo "run $run service: $n confirmed in ${DURATION}s = $rate/s; database CPU $cpu_ms ms, service CPU $own_ms ms, fake MercadoPago CPU $fake_ms ms per confirmation; $(grep -E 'Latency ' "$B/wrk-$run.log" | tr -s ' ')"

  # pgbench again, held to the confirmations/s the service just measured.
  service_cpu=$cpu_ms
  pgbench_run pgbench-held -R "$(awk -v r="$rate" 'BEGIN { printf "%.0f", (r < 1 ? 1 : r) }')"
  held_cpu+=("$cpu_ms") held_ratios+=("$(ratio "$service_cpu" "$cpu_ms")")
done
echo
echo "min/median/max of 3 interleaved runs (${DURATION}s each, $CLIENTS connections):"
echo "  pgbench confirmations/s:           $(mmm "${pg_rates[@]}")"
echo "  service confirmations/s:           $(mmm "${svc_rates[@]}")"
echo "  service / pgbench (same run pair): $(mmm "${ratios[@]}")"
echo "  database CPU ms/confirmation, pgbench: $(mmm "${pg_cpu[@]}")"
echo "  database CPU ms/confirmation, service: $(mmm "${svc_cpu[@]}")"
echo "  database CPU ms/confirmation, pgbench at the service's rate: $(mmm "${held_cpu[@]}")"
echo "  database CPU per confirmation, service / pgbench at its rate: $(mmm "${held_ratios[@]}")"
echo "  service process CPU ms/confirmation:   $(mmm "${svc_own[@]}")"
echo "  fake MercadoPago CPU ms/confirmation:   $(mmm "${fake_own[@]}")"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
