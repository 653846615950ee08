-- Prepares a migrated PostgreSQL database for the MercadoPago confirmation benchmark
-- (docs/bench/mercadopago-confirm.pgbench against the database,
-- docs/bench/mercadopago-confirm.lua against the service; ops/bench/mercadopago-confirm.sh
-- runs both). Run it before every run, with the number of pre-reservations to confirm:
--
--   psql -v ON_ERROR_STOP=1 -v bookings=<n> -f docs/bench/mercadopago-confirm-setup.sql <url>
--
-- It empties the tables a confirmation writes, makes 30 accommodations, and pre-reserves
-- <n> one-night stays MPB-1..MPB-<n> that never overlap (stay n is accommodation
-- (n % 30) + 1, the night starting 1 + n / 30 days after today), each with a deposit of
-- 255.00 ARS, which the fake MercadoPago's payment n pays, expiring in two hours so that
-- no sweep expires one during a run. Web bookings with no e-mail: a confirmation queues no
-- message, the notify statement runs and inserts nothing (the service without SMTP does
-- the same). The sequence bench_confirm_slot hands pgbench the slots 1..<n> in order.
--
-- The payment tables start with <n> earlier payments (codes HIST-1..HIST-<n>, confirmed,
-- one event each), as a service in use has, not empty: on a table the statistics call empty
-- the planner picks a sequential scan, and a connection that caches that plan (pgbench's
-- and the service's prepared statements both) keeps scanning the whole table on every
-- confirmation as the run fills it. Measured before this history was added: the service's
-- `UPDATE payments SET outcome` read 19 buffers per call against pgbench's 5
-- (pg_stat_statements), and auto_explain showed sequential scans of up to 10,000 rows.
SET client_min_messages = warning;
TRUNCATE reservations, payments, payment_events, outbox CASCADE;
INSERT INTO accommodations (slug, name, capacity, base_price_cents)
  SELECT 'bench-cabin-' || a, 'Bench cabin ' || a, 4, 85000 FROM generate_series(1, 30) a
  ON CONFLICT DO NOTHING;
INSERT INTO reservations (code, accommodation_id, check_in, check_out, guests, channel,
    contact_name, contact_phone, contact_email, status, total_price_cents, deposit_cents,
    expires_at, created_at, updated_at)
SELECT 'MPB-' || n, (SELECT id FROM accommodations WHERE slug = 'bench-cabin-' || (n % 30 + 1)),
    CURRENT_DATE + 1 + n / 30, CURRENT_DATE + 2 + n / 30, 1, 'web', 'Bench Guest',
    '+56911111111', NULL, 'pre_reserved', 85000, 25500, now() + interval '2 hours', now(), now()
FROM generate_series(1, :bookings) n;
INSERT INTO payments (provider, provider_payment_id, reservation_code, provider_status,
    amount_cents, currency, outcome, received_at, updated_at)
SELECT 'mercadopago', 'H' || n, 'HIST-' || n, 'approved', 25500, 'ARS', 'confirmed',
    now() - interval '30 days', now() - interval '30 days'
FROM generate_series(1, :bookings) n;
INSERT INTO payment_events (provider, provider_payment_id, reservation_code, provider_status,
    amount_cents, currency, outcome, received_at)
SELECT 'mercadopago', 'H' || n, 'HIST-' || n, 'approved', 25500, 'ARS', 'confirmed',
    now() - interval '30 days'
FROM generate_series(1, :bookings) n;
DROP SEQUENCE IF EXISTS bench_confirm_slot;
CREATE SEQUENCE bench_confirm_slot;
VACUUM ANALYZE reservations;
VACUUM ANALYZE payments;
VACUUM ANALYZE payment_events;
VACUUM ANALYZE outbox;
