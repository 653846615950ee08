-- btree_gist lets one GiST index combine `accommodation_id WITH =` and `period WITH &&`.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE accommodations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    base_price_cents BIGINT NOT NULL CHECK (base_price_cents >= 0),
    -- Basis points: 12000 = 1.20x, so prices stay integer arithmetic.
    weekend_multiplier_bp INTEGER NOT NULL DEFAULT 12000 CHECK (weekend_multiplier_bp > 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code TEXT NOT NULL,
    accommodation_id BIGINT NOT NULL REFERENCES accommodations (id),
    check_in DATE NOT NULL,
    check_out DATE NOT NULL,
    period DATERANGE GENERATED ALWAYS AS (daterange(check_in, check_out, '[)')) STORED,
    guests INTEGER NOT NULL,
    channel TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    contact_email TEXT,
    status TEXT NOT NULL DEFAULT 'pre_reserved',
    total_price_cents BIGINT NOT NULL,
    deposit_cents BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT reservations_code_key UNIQUE (code),
    CONSTRAINT reservations_status_check
        CHECK (status IN ('pre_reserved', 'confirmed', 'cancelled', 'expired')),
    CONSTRAINT reservations_dates_check CHECK (check_out > check_in),
    CONSTRAINT reservations_guests_check CHECK (guests > 0),
    -- The anti-double-booking guarantee: no two active stays of one accommodation overlap.
    -- Half-open ranges make back-to-back stays legal.
    CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        accommodation_id WITH =,
        period WITH &&
    ) WHERE (status IN ('pre_reserved', 'confirmed'))
);

CREATE INDEX reservations_pending_expiry_idx ON reservations (expires_at)
    WHERE status = 'pre_reserved';

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    request_body TEXT NOT NULL,
    -- NULL while the first request holding the key is still being processed.
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
