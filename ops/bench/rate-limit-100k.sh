#!/bin/bash
# The per-client rate limiter's cost per request and its memory at 100,000 clients: wrk sends
# unsigned MercadoPago notifications (refused 401 after the limiter counts them; no database
# work) to the release service in three settings, interleaved three times:
#   off   RATE_LIMIT_PER_MINUTE=0, 100,000 distinct Fly-Client-IP values
#   one   the limiter on (a limit nobody reaches), every request from one client
#   100k  the limiter on, 100,000 distinct Fly-Client-IP values (twice its 50,000-client cap,
#         so its generations keep rotating)
# A fresh service per run (SQLite, nothing else running in it). Prints per run req/s, the
# service's CPU per request (from /proc) and its resident memory before and after, then
# min/median/max per setting and the ratios against `off` of the same round.
#
#   cargo build --release -p backend --bin cabanas
#   ops/bench/rate-limit-100k.sh
#
# Environment: CABANAS (the service binary, default target/release/cabanas), DURATION
# (seconds per run, default 20; a run must reach all 100,000 clients), CONNECTIONS (wrk's, default 32).
# Needs: wrk, curl.
set -euo pipefail
WT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
source "$WT/ops/bench/lib.sh"
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-32}
bench_start ratelimit-bench
BASE_ENV=(DATABASE_URL="sqlite:$B/bench.db?mode=rwc" JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop
  ADMIN_ALLOWED_EMAILS=ops@example.com RUST_LOG=error MERCADOPAGO_WEBHOOK_SECRET=bench-webhook-secret)
env "${BASE_ENV[@]}" "$BIN" migrate > "$B/migrate.log" 2>&1

declare -A rates cpu rss_growth
for round in 1 2 3; do
  for setting in off one 100k; do
    case $setting in
      off) limit=0 clients=100000 ;;
      one) limit=1000000000 clients=1 ;;
      100k) limit=1000000000 clients=100000 ;;
    esac
    start_service "$BIN" "${BASE_ENV[@]}" RATE_LIMIT_PER_MINUTE=$limit
    before_rss=$(rss_kib "$SERVICE_PID")
    before=$(process_seconds "$SERVICE_PID")
    CLIENTS=$clients WRK_THREADS=2 wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" \
      -s "$WT/docs/bench/rate-limit-clients.lua" "$SERVICE_URL" > "$B/wrk.log" 2>&1
    after=$(process_seconds "$SERVICE_PID")
    after_rss=$(rss_kib "$SERVICE_PID")
    stop_started
    if grep '^status ' "$B/wrk.log" | grep -v '^status 401:' > /dev/null; then
      echo "round $round $setting: a status other than 401:" >&2
      cat "$B/wrk.log" >&2
      exit 1
    fi
    requests=$(awk '/requests in/ { print $1 }' "$B/wrk.log")
    rate=$(ratio "$requests" "$DURATION" 0)
    us=$(awk -v a="$before" -v b="$after" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')
    rates[$setting]+="$rate " cpu[$setting]+="$us "
    rss_growth[$setting]+="$((after_rss - before_rss)) "
    if [ "$clients" -gt 1 ] && [ "$requests" -lt "$clients" ]; then
      echo "round $round $setting: only $requests requests, fewer than the $clients clients: raise DURATION" >&2
      exit 2
    fi
    echo "round $round $setting: $requests requests = $rate/s, service CPU $us us/request, RSS $before_rss -> $after_rss KiB"
  done
done
echo
echo "min/median/max of 3 interleaved rounds (${DURATION}s each, $CONNECTIONS connections):"
for setting in off one 100k; do
  # shellcheck disable=SC2086
  echo "  $setting: req/s $(mmm ${rates[$setting]}); service CPU us/request $(mmm ${cpu[$setting]}); RSS growth KiB $(mmm ${rss_growth[$setting]})"
done
for setting in one 100k; do
  read -ra on <<< "${cpu[$setting]}"
  read -ra off <<< "${cpu[off]}"
  read -ra on_rate <<< "${rates[$setting]}"
  read -ra off_rate <<< "${rates[off]}"
  cpu_ratios=() rate_ratios=()
  for i in 0 1 2; do
    cpu_ratios+=("$(ratio "${on[$i]}" "${off[$i]}")")
    rate_ratios+=("$(ratio "${on_rate[$i]}" "${off_rate[$i]}")")
  done
  echo "  $setting / off (same round): CPU per request $(mmm "${cpu_ratios[@]}"); req/s $(mmm "${rate_ratios[@]}")"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
