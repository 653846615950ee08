-- Payment confirmations by e-mail: the outbox gains the 'email' channel (recipient is then
-- the guest's address). SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt (the documented procedure, https://www.sqlite.org/lang_altertable.html#otheralter);
-- no table has a foreign key to it, and this runs inside the migration's transaction.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('whatsapp', 'email')),
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed', 'unknown')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    claim_token TEXT,
    last_error TEXT,
    provider_message_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    CONSTRAINT outbox_dedupe_key_key UNIQUE (dedupe_key)
);

INSERT INTO outbox_new (
    id, dedupe_key, channel, recipient, body, status, attempts, next_attempt_at,
    claimed_until, claim_token, last_error, provider_message_id, created_at, sent_at
)
SELECT
    id, dedupe_key, channel, recipient, body, status, attempts, next_attempt_at,
    claimed_until, claim_token, last_error, provider_message_id, created_at, sent_at
FROM outbox;

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
