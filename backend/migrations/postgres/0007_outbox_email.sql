-- Payment confirmations by e-mail: the outbox gains the 'email' channel (recipient is then
-- the guest's address). `outbox_channel_check` is the name PostgreSQL gave the column's
-- unnamed CHECK in 0004 (<table>_<column>_check).
ALTER TABLE outbox DROP CONSTRAINT outbox_channel_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_channel_check CHECK (channel IN ('whatsapp', 'email'));
