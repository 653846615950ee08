-- Dates are TEXT 'YYYY-MM-DD' and timestamps TEXT RFC 3339 at whole seconds in UTC,
-- both of which order correctly as strings.

CREATE TABLE accommodations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    base_price_cents INTEGER NOT NULL CHECK (base_price_cents >= 0),
    -- Basis points: 12000 = 1.20x, so prices stay integer arithmetic.
    weekend_multiplier_bp INTEGER NOT NULL DEFAULT 12000 CHECK (weekend_multiplier_bp > 0),
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))
);

CREATE TABLE reservations (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL CONSTRAINT reservations_code_key UNIQUE,
    accommodation_id INTEGER NOT NULL REFERENCES accommodations (id),
    check_in TEXT NOT NULL,
    check_out TEXT NOT NULL,
    guests INTEGER NOT NULL CHECK (guests > 0),
    channel TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    contact_email TEXT,
    status TEXT NOT NULL DEFAULT 'pre_reserved'
        CHECK (status IN ('pre_reserved', 'confirmed', 'cancelled', 'expired')),
    total_price_cents INTEGER NOT NULL,
    deposit_cents INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (check_out > check_in)
);

CREATE INDEX reservations_accommodation_dates_idx
    ON reservations (accommodation_id, check_in, check_out);
CREATE INDEX reservations_pending_expiry_idx ON reservations (expires_at)
    WHERE status = 'pre_reserved';

-- The anti-double-booking guarantee (PostgreSQL uses an exclusion constraint instead).
-- The triggers run inside the writing statement, and SQLite allows one writer at a time,
-- so the check and the write cannot interleave with another writer.
CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.status IN ('pre_reserved', 'confirmed')
BEGIN
    SELECT RAISE(ABORT, 'date_overlap')
    WHERE EXISTS (
        SELECT 1 FROM reservations AS r
        WHERE r.accommodation_id = NEW.accommodation_id
          AND r.status IN ('pre_reserved', 'confirmed')
          AND r.check_in < NEW.check_out
          AND NEW.check_in < r.check_out
    );
END;

CREATE TRIGGER reservations_no_overlap_update
BEFORE UPDATE OF accommodation_id, check_in, check_out, status ON reservations
WHEN NEW.status IN ('pre_reserved', 'confirmed')
BEGIN
    SELECT RAISE(ABORT, 'date_overlap')
    WHERE EXISTS (
        SELECT 1 FROM reservations AS r
        WHERE r.accommodation_id = NEW.accommodation_id
          AND r.id <> NEW.id
          AND r.status IN ('pre_reserved', 'confirmed')
          AND r.check_in < NEW.check_out
          AND NEW.check_in < r.check_out
    );
END;

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_body TEXT NOT NULL,
    -- NULL while the first request holding the key is still being processed.
    response_status INTEGER,
    response_body TEXT,
    created_at TEXT NOT NULL
);
