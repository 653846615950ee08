-- Calendar sync: the iCal export's per-cabin secret, the imported feeds, and the blocks they
-- bring in. An imported block is a reservations row with status 'blocked', so the one
-- exclusion constraint below covers bookings and blocks alike: a pre-reserve that overlaps a
-- block fails with 23P01 exactly as one that overlaps a stay. (A separate blocks table could
-- not share the constraint: PostgreSQL's EXCLUDE spans one table.)

-- The secret in the export URL; set on first use by the service (a CSPRNG token), never here.
ALTER TABLE accommodations ADD COLUMN calendar_token TEXT;

CREATE TABLE calendar_imports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accommodation_id BIGINT NOT NULL REFERENCES accommodations (id),
    url TEXT NOT NULL,
    -- HTTP validators of the last 200, sent back as If-None-Match / If-Modified-Since.
    etag TEXT,
    last_modified TEXT,
    last_attempt_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    -- Why the last attempt failed; NULL after a success.
    last_error TEXT,
    -- Events of the last accepted feed that could not become blocks (their dates were
    -- already taken by another booking or block).
    skipped_events INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT calendar_imports_feed_key UNIQUE (accommodation_id, url)
);

ALTER TABLE reservations
    ADD COLUMN calendar_import_id BIGINT REFERENCES calendar_imports (id) ON DELETE CASCADE;

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('pre_reserved', 'confirmed', 'cancelled', 'expired', 'blocked'));
-- A block is exactly a row that an imported feed owns.
ALTER TABLE reservations ADD CONSTRAINT reservations_block_has_feed_check
    CHECK ((status = 'blocked') = (calendar_import_id IS NOT NULL));

-- The same guarantee as 0001, now counting blocks as taken dates.
ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap;
ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
    accommodation_id WITH =,
    period WITH &&
) WHERE (status IN ('pre_reserved', 'confirmed', 'blocked'));

CREATE INDEX reservations_calendar_import_idx ON reservations (calendar_import_id)
    WHERE calendar_import_id IS NOT NULL;
