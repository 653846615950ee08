//! Reaching a PostgreSQL database from the client tools (`psql`, `pg_dump`, `pg_restore`)
//! without a secret on their command line: the connection goes in `PG*` environment
//! variables and the password in a `PGPASSFILE` of mode 600 that lives as long as the
//! [`PgConnection`] (libpq: "The Password File", postgresql.org/docs/current/libpq-pgpass.html).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};

/// How to reach one database; shows no password.
pub struct PgConnection {
    /// The database name.
    pub database: String,
    /// `host:port` (for messages).
    pub shown: String,
    env: Vec<(String, String)>,
    _passfile: Option<tempfile::NamedTempFile>,
}

impl std::fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgConnection({}/{})", self.shown, self.database)
    }
}

/// `\` and `:` are the password file's separators and escape (libpq-pgpass).
fn passfile_field(text: &str) -> String {
    text.replace('\\', "\\\\").replace(':', "\\:")
}

impl PgConnection {
    /// The connection a `postgres://` or `postgresql://` URL names. `origin` says where the URL
    /// came from, for errors (which never repeat it).
    pub fn from_url(url: &str, origin: &str) -> anyhow::Result<PgConnection> {
        let parsed = reqwest::Url::parse(url).map_err(|_| {
            anyhow::anyhow!(
                "{origin} is not a URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            bail!("{origin} must start with postgres:// or postgresql://");
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .with_context(|| format!("{origin} has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port().unwrap_or(5432).to_string();
        let decode = |s: &str| {
            percent_decode(s)
                .with_context(|| format!("{origin} has a badly escaped user or password"))
        };
        let user = decode(parsed.username())?;
        let database = decode(parsed.path().trim_start_matches('/'))?;
        if database.is_empty() {
            bail!("{origin} names no database (…/DATABASE)");
        }
        let mut env = vec![
            ("PGHOST".to_string(), host.clone()),
            ("PGPORT".to_string(), port.clone()),
            ("PGDATABASE".to_string(), database.clone()),
        ];
        if !user.is_empty() {
            env.push(("PGUSER".to_string(), user.clone()));
        }
        for (key, value) in parsed.query_pairs() {
            if key == "sslmode" {
                env.push(("PGSSLMODE".to_string(), value.into_owned()));
            }
        }
        let passfile = match parsed.password() {
            Some(password) => {
                let password = decode(password)?;
                let mut file = tempfile::Builder::new()
                    .prefix("cabanas-pgpass")
                    .tempfile()
                    .context("creating a password file")?;
                // tempfile creates it with mode 600, as libpq requires.
                writeln!(
                    file,
                    "*:*:*:{}:{}",
                    passfile_field(&user),
                    passfile_field(&password)
                )?;
                file.flush()?;
                env.push(("PGPASSFILE".to_string(), file.path().display().to_string()));
                Some(file)
            }
            None => None,
        };
        Ok(PgConnection {
            database,
            shown: format!("{host}:{port}"),
            env,
            _passfile: passfile,
        })
    }

    /// The same server, another database.
    pub fn with_database(&self, database: &str) -> PgConnection {
        let mut env = self.env.clone();
        for (key, value) in &mut env {
            if key == "PGDATABASE" {
                *value = database.to_string();
            }
        }
        PgConnection {
            database: database.to_string(),
            shown: self.shown.clone(),
            env,
            _passfile: None,
        }
    }

    /// `program` set up to reach this database (libpq reads the `PG*` variables).
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `sql` in `psql` and returns its unaligned, tuples-only output.
    pub fn query(&self, psql: &Path, sql: &str) -> anyhow::Result<String> {
        let output = self
            .command(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .with_context(|| format!("starting {}", psql.display()))?;
        if !output.status.success() {
            bail!(
                "psql on {}/{} failed: {}",
                self.shown,
                self.database,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).context("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// A `psql` session holding one transaction open, so what runs in it and a `pg_dump
/// --snapshot` see the same data.
pub struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Marks the end of one request's output.
const END: &str = "--cabanas-end--";

impl Session {
    /// Starts psql on `connection` and opens a repeatable-read, read-only transaction.
    pub fn open(connection: &PgConnection, psql: &Path) -> anyhow::Result<Session> {
        let mut child = connection
            .command(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", psql.display()))?;
        let stdin = child.stdin.take().context("psql's stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("psql's stdout")?);
        let mut session = Session {
            child,
            stdin,
            stdout,
        };
        session.ask("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")?;
        Ok(session)
    }

    /// Runs `sql` in the transaction and returns its output lines.
    pub fn ask(&mut self, sql: &str) -> anyhow::Result<Vec<String>> {
        writeln!(self.stdin, "{sql}\nSELECT '{END}';")?;
        self.stdin.flush()?;
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("psql stopped while running `{sql}` (its error is above)");
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line == END {
                return Ok(lines);
            }
            lines.push(line.to_string());
        }
    }

    /// Ends the transaction and psql.
    pub fn close(mut self) -> anyhow::Result<()> {
        writeln!(self.stdin, "COMMIT;")?;
        drop(self.stdin);
        self.child.wait()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_to_a_file_and_never_into_the_environment() {
        let connection = PgConnection::from_url(
            "postgres://app:p%3Aa%5Css@db.internal:6543/cabanas?sslmode=require",
            "DATABASE_URL",
        )
        .unwrap();
        assert_eq!(connection.database, "cabanas");
        let env: std::collections::BTreeMap<_, _> = connection.env.iter().cloned().collect();
        assert_eq!(env["PGHOST"], "db.internal");
        assert_eq!(env["PGPORT"], "6543");
        assert_eq!(env["PGUSER"], "app");
        assert_eq!(env["PGSSLMODE"], "require");
        assert!(env.values().all(|v| !v.contains("p:a")));
        let file = std::fs::read_to_string(&env["PGPASSFILE"]).unwrap();
        assert_eq!(file, "*:*:*:app:p\\:a\\\\ss\n");
        assert!(!format!("{connection:?}").contains("p:a"));
        let error = PgConnection::from_url("mysql://u:secretpw@h/d", "DATABASE_URL").unwrap_err();
        assert!(!format!("{error:#}").contains("secretpw"));
    }
}
