-- MercadoPago payments as the provider reported them: one row per payment, updated when a
-- later notification changes its status, with what the service did about it (`outcome`).
-- No foreign key to reservations: a payment for an unknown code is recorded too.
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    provider_payment_id TEXT NOT NULL,
    reservation_code TEXT,
    provider_status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT,
    outcome TEXT NOT NULL DEFAULT 'received',
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT payments_provider_payment_key UNIQUE (provider, provider_payment_id)
);

CREATE INDEX payments_reservation_code_idx ON payments (reservation_code);

-- Inbound WhatsApp messages, one row per WhatsApp message id (redeliveries change nothing).
CREATE TABLE whatsapp_messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL CONSTRAINT whatsapp_messages_message_id_key UNIQUE,
    sender TEXT NOT NULL,
    message_type TEXT NOT NULL,
    body TEXT,
    sent_at TEXT NOT NULL,
    received_at TEXT NOT NULL
);
