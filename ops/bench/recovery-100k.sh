#!/bin/bash
# Backup, restore-drill and restore times for a PostgreSQL database of 100,000 bookings,
# three runs each (the numbers in the issue note come from this script).
#
#   cargo build -p backend -p xtask
#   SERVER=postgres://postgres@127.0.0.1:5432/postgres ops/bench/recovery-100k.sh
#
# SERVER: a PostgreSQL 15 server this script may create and drop a database on.
set -euo pipefail
WT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SERVER=${SERVER:?set SERVER to a PostgreSQL URL this script may create a database on}
DB=bench_100k
B=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$B"
HOST_PORT=$(echo "$SERVER" | sed -E 's#^postgres(ql)?://([^/]*)/.*#\2#')
psql "$SERVER" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
psql "$SERVER" -qc "CREATE DATABASE $DB"
URL=postgres://$HOST_PORT/$DB
# The service's own migrations.
DATABASE_URL=$URL JWT_SECRET=bench-secret-0123456789-abcdefghijklmnop ADMIN_ALLOWED_EMAILS=ops@example.com \
  $WT/target/debug/cabanas migrate > $B/migrate.log 2>&1
# 100 cabins x 1000 back-to-back two-night stays: 100,000 bookings, no two active ones overlap.
time psql "$URL" -v ON_ERROR_STOP=1 -q <<'SQL'
INSERT INTO accommodations (slug, name, capacity, base_price_cents)
  SELECT 'cabin-' || a, 'Cabin ' || a, 4, 100000 FROM generate_series(1, 100) a;
INSERT INTO reservations (code, accommodation_id, check_in, check_out, guests, channel,
  contact_name, contact_phone, status, total_price_cents, deposit_cents, expires_at, created_at, updated_at)
SELECT 'B' || acc.id || '-' || n, acc.id, date '2027-01-01' + 2 * n, date '2027-01-01' + 2 * n + 2, 2, 'web',
  'Guest ' || n, '+54911' || lpad(n::text, 8, '0'),
  CASE WHEN n % 10 = 0 THEN 'cancelled' ELSE 'confirmed' END, 200000, 60000, now(), now(), now()
FROM accommodations acc CROSS JOIN generate_series(0, 999) n;
SQL
psql "$URL" -Atc "SELECT count(*) FROM reservations"
# A repository for the tasks: deploy.toml, the env file, the migrations the drill checks.
R=$B/repo
rm -rf $R; mkdir -p $R/ops $R/env $R/backend/migrations
printf '[workspace]\nmembers = []\n' > $R/Cargo.toml
printf '[environments.bench]\napp = "cabanas-bench"\nurl = "https://cabanas-bench.fly.dev"\nenv_file = "env/.env.fly.bench"\ntemplate = "env/.env.fly.bench.template"\n' > $R/ops/deploy.toml
printf 'DATABASE_URL=%s\n' "$URL" > $R/env/.env.fly.bench
cp -r $WT/backend/migrations/postgres $R/backend/migrations/
cd $R
for i in 1 2 3; do
  rm -rf $B/backups-$i
  /usr/bin/time -f "backup run $i: %e s" $WT/target/debug/xtask backup --env bench --to $B/backups-$i 2>&1 | grep -E "run $i|bytes"
done
for i in 1 2 3; do
  /usr/bin/time -f "restore-drill run $i: %e s" $WT/target/debug/xtask restore-drill --from "$(ls $B/backups-$i/*.manifest.json)" 2>&1 | grep -E "run $i|RTO|FAIL|restore-drill:"
done
for i in 1 2 3; do
  /usr/bin/time -f "restore run $i: %e s (its own backup of what it replaces included)" $WT/target/debug/xtask restore --env bench --from "$(ls $B/backups-1/*.manifest.json)" --yes --keep $B/kept-$i 2>&1 | grep -E "run $i|restore:"
done
psql "$SERVER" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
