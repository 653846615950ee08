-- MercadoPago payments as the provider reported them: one row per payment, updated when a
-- later notification changes its status, with what the service did about it (`outcome`).
-- No foreign key to reservations: a payment for an unknown code is recorded too.
CREATE TABLE payments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider TEXT NOT NULL,
    provider_payment_id TEXT NOT NULL,
    reservation_code TEXT,
    provider_status TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    currency TEXT,
    outcome TEXT NOT NULL DEFAULT 'received',
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT payments_provider_payment_key UNIQUE (provider, provider_payment_id)
);

CREATE INDEX payments_reservation_code_idx ON payments (reservation_code);

-- Inbound WhatsApp messages, one row per WhatsApp message id (redeliveries change nothing).
CREATE TABLE whatsapp_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    message_type TEXT NOT NULL,
    body TEXT,
    sent_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT whatsapp_messages_message_id_key UNIQUE (message_id)
);
