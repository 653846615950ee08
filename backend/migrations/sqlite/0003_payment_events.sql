-- Every payment notification as it arrived, one row per delivery, never changed afterwards:
-- the `payments` row holds a payment's current state, this table its history (approved, then
-- refunded or charged back, each with what the service did about it).
CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    provider_payment_id TEXT NOT NULL,
    reservation_code TEXT,
    provider_status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT,
    outcome TEXT NOT NULL,
    received_at TEXT NOT NULL
);

CREATE INDEX payment_events_payment_idx ON payment_events (provider, provider_payment_id);
CREATE INDEX payment_events_reservation_code_idx ON payment_events (reservation_code);

-- Append-only: a history that can be edited is not one.
CREATE TRIGGER payment_events_no_update BEFORE UPDATE ON payment_events
BEGIN
    SELECT RAISE(ABORT, 'payment_events is append-only');
END;

CREATE TRIGGER payment_events_no_delete BEFORE DELETE ON payment_events
BEGIN
    SELECT RAISE(ABORT, 'payment_events is append-only');
END;

-- Set when the deposit that confirmed a reservation is refunded or charged back
-- (`refunded`, `charged_back`): the stay stays confirmed and an admin decides.
ALTER TABLE reservations ADD COLUMN payment_flag TEXT;
