-- Calendar sync: the iCal export's per-cabin secret, the imported feeds, and the blocks they
-- bring in. An imported block is a reservations row with status 'blocked', so the same
-- triggers that keep stays apart keep stays and blocks apart (see the PostgreSQL twin of this
-- file for the exclusion constraint).

-- The secret in the export URL; set on first use by the service (a CSPRNG token), never here.
ALTER TABLE accommodations ADD COLUMN calendar_token TEXT;

CREATE TABLE calendar_imports (
    id INTEGER PRIMARY KEY,
    accommodation_id INTEGER NOT NULL REFERENCES accommodations (id),
    url TEXT NOT NULL,
    -- HTTP validators of the last 200, sent back as If-None-Match / If-Modified-Since.
    etag TEXT,
    last_modified TEXT,
    last_attempt_at TEXT,
    last_success_at TEXT,
    -- Why the last attempt failed; NULL after a success.
    last_error TEXT,
    -- Events of the last accepted feed that could not become blocks (their dates were
    -- already taken by another booking or block).
    skipped_events INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    CONSTRAINT calendar_imports_feed_key UNIQUE (accommodation_id, url)
);

-- SQLite cannot change a CHECK constraint in place, so reservations is rebuilt (the
-- documented procedure, https://www.sqlite.org/lang_altertable.html#otheralter); no table
-- has a foreign key to it, and this runs inside the migration's transaction.
CREATE TABLE reservations_new (
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
        CHECK (status IN ('pre_reserved', 'confirmed', 'cancelled', 'expired', 'blocked')),
    total_price_cents INTEGER NOT NULL,
    deposit_cents INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    payment_flag TEXT,
    calendar_import_id INTEGER REFERENCES calendar_imports (id) ON DELETE CASCADE,
    CHECK (check_out > check_in),
    -- A block is exactly a row that an imported feed owns.
    CHECK ((status = 'blocked') = (calendar_import_id IS NOT NULL))
);

INSERT INTO reservations_new (
    id, code, accommodation_id, check_in, check_out, guests, channel, contact_name,
    contact_phone, contact_email, status, total_price_cents, deposit_cents, expires_at,
    created_at, updated_at, payment_flag
)
SELECT
    id, code, accommodation_id, check_in, check_out, guests, channel, contact_name,
    contact_phone, contact_email, status, total_price_cents, deposit_cents, expires_at,
    created_at, updated_at, payment_flag
FROM reservations;

DROP TABLE reservations;
ALTER TABLE reservations_new RENAME TO reservations;

CREATE INDEX reservations_accommodation_dates_idx
    ON reservations (accommodation_id, check_in, check_out);
CREATE INDEX reservations_pending_expiry_idx ON reservations (expires_at)
    WHERE status = 'pre_reserved';
CREATE INDEX reservations_calendar_import_idx ON reservations (calendar_import_id)
    WHERE calendar_import_id IS NOT NULL;

-- The anti-double-booking guarantee of 0001, now counting blocks as taken dates.
CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.status IN ('pre_reserved', 'confirmed', 'blocked')
BEGIN
    SELECT RAISE(ABORT, 'date_overlap')
    WHERE EXISTS (
        SELECT 1 FROM reservations AS r
        WHERE r.accommodation_id = NEW.accommodation_id
          AND r.status IN ('pre_reserved', 'confirmed', 'blocked')
          AND r.check_in < NEW.check_out
          AND NEW.check_in < r.check_out
    );
END;

CREATE TRIGGER reservations_no_overlap_update
BEFORE UPDATE OF accommodation_id, check_in, check_out, status ON reservations
WHEN NEW.status IN ('pre_reserved', 'confirmed', 'blocked')
BEGIN
    SELECT RAISE(ABORT, 'date_overlap')
    WHERE EXISTS (
        SELECT 1 FROM reservations AS r
        WHERE r.accommodation_id = NEW.accommodation_id
          AND r.id <> NEW.id
          AND r.status IN ('pre_reserved', 'confirmed', 'blocked')
          AND r.check_in < NEW.check_out
          AND NEW.check_in < r.check_out
    );
END;
