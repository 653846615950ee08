//! Which pool a read uses: the region's replica while it is fresh, else the primary
//! ([`crate::db::replica`] says how fresh is measured). Writes never come here: they use
//! the primary pool, and outside the primary region they are replayed there before any
//! query (`http::replay`).

use crate::db::Db;
use crate::db::replica::ReadReplica;

/// `db_reads_total`'s label for reads served by the replica.
pub const FROM_REPLICA: &str = "replica";
/// `db_reads_total`'s label for reads served by the primary.
pub const FROM_PRIMARY: &str = "primary";

/// The pool for a read: `replica` when there is one and it is within its staleness bound,
/// else `primary`. Counted in `db_reads_total{pool}`.
pub async fn read_pool<'a>(primary: &'a Db, replica: Option<&'a ReadReplica>) -> &'a Db {
    let (db, label) = match replica {
        Some(replica) if replica.fresh().await => (replica.db(), FROM_REPLICA),
        _ => (primary, FROM_PRIMARY),
    };
    metrics::counter!("db_reads_total", "pool" => label).increment(1);
    db
}
