//! Reading a database error: what a failed write means for the caller.

/// What a failed write means for the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteFailure {
    /// The anti-overlap guarantee refused the row (PostgreSQL 23P01 on
    /// `reservations_no_overlap`, or the SQLite trigger's `date_overlap` abort).
    DateOverlap,
    /// A UNIQUE constraint refused the row (SQLSTATE 23505 / SQLite UNIQUE failed).
    UniqueViolation,
    /// A transient conflict worth retrying at once: deadlock, serialization failure, a
    /// stale SQLite snapshot.
    Transient,
    /// The database is not able to serve writes right now (connection lost or refused,
    /// lock or statement timeout, disk full, SQLite still busy after its busy timeout):
    /// answered 503 with `Retry-After`.
    Unavailable,
    /// Anything else.
    Other,
}

/// Reads a database error into a [`WriteFailure`], by the database that raised it:
/// PostgreSQL reports five-character SQLSTATEs, SQLite numeric result codes, and reading one
/// as the other misleads (SQLSTATE `22021`, a NUL in text, parsed as a number and masked
/// like an extended SQLite code is 5, `SQLITE_BUSY`).
pub fn classify(err: &sqlx::Error) -> WriteFailure {
    let Some(db_err) = err.as_database_error() else {
        return match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => WriteFailure::Unavailable,
            _ => WriteFailure::Other,
        };
    };
    if let Some(pg) = db_err.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        classify_sqlstate(pg.code(), pg.constraint())
    } else if let Some(sqlite) = db_err.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        classify_sqlite(sqlite)
    } else {
        WriteFailure::Other
    }
}

/// PostgreSQL, by SQLSTATE (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
fn classify_sqlstate(code: &str, constraint: Option<&str>) -> WriteFailure {
    if code == "23P01" && constraint == Some("reservations_no_overlap") {
        return WriteFailure::DateOverlap;
    }
    if code == "23505" {
        return WriteFailure::UniqueViolation;
    }
    // deadlock_detected, serialization_failure.
    if code == "40P01" || code == "40001" {
        return WriteFailure::Transient;
    }
    // Connection exceptions (08), shutdown or restart (57P01-57P03), statement timeout
    // (57014), lock timeout (55P03), idle-in-transaction timeout (25P03), insufficient
    // resources such as a full disk (53), I/O error (58030).
    if code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "25P03" | "58030"
        )
    {
        return WriteFailure::Unavailable;
    }
    // Everything else, data exceptions (22, such as 22021 for a NUL in text) included, is
    // about the statement, not the database's health: retrying cannot help.
    WriteFailure::Other
}

/// SQLite, by result code (<https://www.sqlite.org/rescode.html>).
fn classify_sqlite(err: &sqlx::sqlite::SqliteError) -> WriteFailure {
    use sqlx::error::DatabaseError;
    if err.message() == "date_overlap" {
        return WriteFailure::DateOverlap;
    }
    if err.is_unique_violation() {
        return WriteFailure::UniqueViolation;
    }
    let Some(n) = err.code().and_then(|c| c.parse::<i32>().ok()) else {
        return WriteFailure::Other;
    };
    // BUSY_SNAPSHOT (517) needs a new transaction, not a wait.
    if n == 517 {
        return WriteFailure::Transient;
    }
    // Primary codes: BUSY (5) and LOCKED (6) after the busy timeout, IOERR (10), FULL (13),
    // CANTOPEN (14).
    if matches!(n & 0xff, 5 | 6 | 10 | 13 | 14) {
        return WriteFailure::Unavailable;
    }
    WriteFailure::Other
}
