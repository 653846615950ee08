-- Messages to guests waiting to be sent (WhatsApp replies, payment confirmations). A row is
-- written in the same transaction as what caused it (the inbound message, the confirming
-- payment), so a crash or an outage of the receiving service loses nothing; a worker in
-- every instance claims due rows, sends them and marks them.
--
-- `dedupe_key` is what makes a message unique ('whatsapp-reply:<wamid>',
-- 'payment-confirmed:<code>'): a redelivery or a repeated payment notification cannot
-- queue a second copy. `claimed_until` is the claim's lease: a worker that dies holding a
-- row gives it back when the lease ends.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('whatsapp')),
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'unknown')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    claim_token TEXT,
    last_error TEXT,
    provider_message_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    CONSTRAINT outbox_dedupe_key_key UNIQUE (dedupe_key)
);

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
