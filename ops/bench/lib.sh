# Shared helpers of the hand-run benchmarks in ops/bench/ (sourced, not run): a throwaway
# PostgreSQL 15 cluster with fsync on, a release service on a free port, CPU seconds and
# memory read from /proc, and min/median/max of three runs.
#
# Needs: /usr/lib/postgresql/15/bin (initdb, pg_ctl), psql, curl, and, when run as root, a
# `postgres` user to own the cluster (initdb refuses root), as xtask/src/pgcluster.rs does.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_PIDS=()

# A TCP port nobody listens on.
free_port() {
  local port
  for port in $(shuf -i 20000-60000 -n 100); do
    if [ -z "$(ss -Htln "sport = :$port")" ]; then echo "$port"; return 0; fi
  done
  echo "no free port found between 20000 and 60000" >&2
  return 1
}

# Starts a cluster in $1 (a fresh directory) with fsync on (PostgreSQL's defaults); sets
# PG_URL (the postgres database) and PG_DATA. PG_EXTRA_OPTS adds server options, e.g.
# "-c shared_preload_libraries=pg_stat_statements,auto_explain" to see what each statement
# costs and how it was planned.
start_cluster() {
  local dir=$1 port
  port=$(free_port)
  PG_DATA=$dir/data
  local run=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; run=(runuser -u postgres --); fi
  "${run[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres > "$dir/initdb.log"
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 ${PG_EXTRA_OPTS:-}" start > /dev/null
  PG_URL=postgres://postgres@127.0.0.1:$port/postgres
  PG_RUN=("${run[@]}")
}

stop_cluster() {
  [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ] &&
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop > /dev/null || true
}

# The postmaster's pid.
postmaster_pid() { head -1 "$PG_DATA/postmaster.pid"; }

# CPU seconds (user + system) of process $1 and every process under it, including children
# that already exited (their time is in the parent's cutime/cstime), like
# xtask/src/bench/cpu.rs. The comm field may hold spaces, so fields are counted after ") ".
tree_seconds() {
  local root=$1
  for f in /proc/[0-9]*/stat; do
    local line
    line=$(cat "$f" 2> /dev/null) || continue
    local pid=${line%% *}
    echo "$pid ${line##*) }"
  done | awk -v root="$root" -v tck="$(getconf CLK_TCK)" '
    { parent[$1] = $3; t[$1] = $13 + $14 + $15 + $16 }
    END {
      total = t[root]; n = 1; frontier[root] = 1; changed = 1
      while (changed) {
        changed = 0
        for (p in parent) if (!(p in frontier) && (parent[p] in frontier)) {
          frontier[p] = 1; total += t[p]; changed = 1
        }
      }
      printf "%.2f\n", total / tck
    }'
}

# CPU seconds of process $1 alone (all its threads).
process_seconds() {
  local line
  line=$(cat "/proc/$1/stat")
  echo "${line##*) }" | awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / tck }'
}

# Resident memory of process $1, in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Starts `cabanas serve` ($1 the binary) on a free port with the environment given as
# further arguments (KEY=VALUE); logs to $SERVICE_LOG; sets SERVICE_PID and SERVICE_URL once
# /api/v1/readyz answers 200.
start_service() {
  local binary=$1 port i
  shift
  port=$(free_port)
  env "$@" HOST=127.0.0.1 PORT="$port" "$binary" serve >> "$SERVICE_LOG" 2>&1 &
  SERVICE_PID=$!
  BENCH_PIDS+=("$SERVICE_PID")
  SERVICE_URL=http://127.0.0.1:$port
  for i in $(seq 1 600); do
    if curl -fsS -o /dev/null "$SERVICE_URL/api/v1/readyz" 2> /dev/null; then return 0; fi
    if ! kill -0 "$SERVICE_PID" 2> /dev/null; then
      echo "the service exited before it was ready; see $SERVICE_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the service was not ready within 60 s; see $SERVICE_LOG" >&2
  return 1
}

# Stops process $1 (one this script started) and waits for it.
stop_pid() {
  kill "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

stop_started() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  BENCH_PIDS=()
}

# "min/median/max" of the numbers given as arguments.
mmm() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%s/%s/%s\n", v[1], m, v[NR] }'
}

# $1 / $2 with $3 decimals (default 3).
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf "%.*f\n", d, (b == 0 ? 0 : a / b) }'; }

# Every script's start: the release binary ($CABANAS, else target/release/cabanas) in BIN, a
# scratch directory /tmp/$1.XXXXXX in B with SERVICE_LOG in it, removed on exit with
# everything started (services, the cluster), and the load average printed.
bench_start() {
  BIN=${CABANAS:-$WT/target/release/cabanas}
  [ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release -p backend --bin cabanas" >&2; exit 2; }
  B=$(mktemp -d "/tmp/$1.XXXXXX")
  SERVICE_LOG=$B/service.log
  trap bench_cleanup EXIT
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_cleanup() { stop_started; stop_cluster; rm -rf "$B"; }

# A throwaway cluster under $B with an empty database `bench`, whose URL goes in URL.
bench_database() {
  start_cluster "$B"
  psql "$PG_URL" -qc "CREATE DATABASE bench"
  URL=${PG_URL%/postgres}/bench
}
