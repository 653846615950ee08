-- Prepares a migrated PostgreSQL database for the pre-reserve benchmarks
-- (docs/bench/prereserve.pgbench against the database, docs/bench/prereserve.lua against the
-- service). Run it once after migrations (`cabanas migrate`) and, optionally,
-- `cabanas seed-demo`:
--
--   psql -v ON_ERROR_STOP=1 -f docs/bench/prereserve-setup.sql <url>
--
-- It makes accommodations 1..30 exist and be active (ids 1..3 are the demo cabins when
-- seed-demo ran first on a fresh database; any id missing is added as `bench-cabin-<id>`),
-- moves the identity past them, and (re)creates the sequence the pgbench script draws its
-- non-conflicting stays from. Running it again changes nothing but restarting that sequence.
--
-- Between runs, empty the tables the bookings fill, so every run starts from the same state:
--
--   TRUNCATE reservations, idempotency_keys;
--
-- (Re-applying this file between runs is also fine; it is idempotent.)

INSERT INTO accommodations (id, slug, name, capacity, base_price_cents, weekend_multiplier_bp, active)
OVERRIDING SYSTEM VALUE
SELECT g, 'bench-cabin-' || g, 'Bench cabin ' || g, 4, 85000, 12000, TRUE
FROM generate_series(1, 30) AS g
ON CONFLICT DO NOTHING;

UPDATE accommodations SET active = TRUE WHERE id BETWEEN 1 AND 30 AND NOT active;

SELECT setval(pg_get_serial_sequence('accommodations', 'id'),
              GREATEST((SELECT max(id) FROM accommodations), 30));

DO $$
BEGIN
    IF (SELECT count(*) FROM accommodations WHERE id BETWEEN 1 AND 30 AND active) <> 30 THEN
        RAISE EXCEPTION 'accommodations 1..30 are not all present and active';
    END IF;
END $$;

-- One value per booking of the pgbench script: slot n books accommodation (n % cabins) + 1
-- on the night (n / cabins) days after tomorrow, so no two bookings ever overlap.
CREATE SEQUENCE IF NOT EXISTS bench_prereserve_slot;
ALTER SEQUENCE bench_prereserve_slot RESTART;
