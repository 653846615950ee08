//! The `whatsapp_messages` table: inbound WhatsApp messages, stored once per message id.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::store::outbox::{self, OutboundMessage};
use crate::with_pool;

/// An inbound message as the WhatsApp Cloud API delivers it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboundMessage {
    /// WhatsApp's message id (`wamid....`).
    pub message_id: String,
    /// The sender's WhatsApp number.
    pub sender: String,
    /// `text`, `image`, `location`, ...
    pub message_type: String,
    /// The text of a text message; `None` for other types.
    pub body: Option<String>,
    /// When the guest sent it.
    pub sent_at: DateTime<Utc>,
}

/// Stores `message` unless its id is already stored, and with it, in the same transaction,
/// the `reply` to send: a stored message always has its reply queued, and a redelivered
/// one queues nothing. Returns whether the message was new.
pub async fn store_inbound(
    db: &Db,
    message: &InboundMessage,
    reply: Option<&OutboundMessage>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO whatsapp_messages \
                       (message_id, sender, message_type, body, sent_at, received_at) \
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING";
    let (message, reply) = (message.clone(), reply.cloned());
    with_pool!(db, pool => {
        crate::db::transaction(pool, move |mut tx| async move {
            let inserted = sqlx::query(SQL)
                .bind(&message.message_id)
                .bind(&message.sender)
                .bind(&message.message_type)
                .bind(&message.body)
                .bind(message.sent_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if let (true, Some(reply)) = (inserted, &reply) {
                sqlx::query(outbox::ENQUEUE)
                    .bind(&reply.dedupe_key)
                    .bind(&reply.recipient)
                    .bind(&reply.body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(inserted)
        })
        .await
    })
}

/// Whether a message with this id is stored (a redelivery needs no new answer).
pub async fn is_stored(db: &Db, message_id: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM whatsapp_messages WHERE message_id = $1";
    let count: i64 = with_pool!(db, pool => {
        sqlx::query_scalar(SQL).bind(message_id).fetch_one(pool).await?
    });
    Ok(count > 0)
}

/// Every stored message, oldest first.
pub async fn all(db: &Db) -> Result<Vec<InboundMessage>, sqlx::Error> {
    const SQL: &str = "SELECT message_id, sender, message_type, body, sent_at \
                       FROM whatsapp_messages ORDER BY id";
    with_pool!(db, pool => sqlx::query_as::<_, InboundMessage>(SQL).fetch_all(pool).await)
}
