//! `migrations`: both migration folders hold ordered sqlx migrations, and the SQL (read as
//! tokens, so comments and strings cannot fake it) creates the anti-double-booking guarantee:
//! on PostgreSQL `btree_gist` and an exclusion constraint over the accommodation and the
//! date range, on SQLite the overlap triggers for insert and update. `CREATE INDEX
//! CONCURRENTLY` cannot run inside the transaction sqlx wraps a migration in, unless the
//! migration's first line is `-- no-transaction`.

use std::collections::BTreeMap;

use super::Context;
use super::outcome::{At, Check, CheckResult};
use super::text::{FileText, read_text};

const POSTGRES_DIR: &str = "backend/migrations/postgres";
const SQLITE_DIR: &str = "backend/migrations/sqlite";

/// A SQL token: lower-cased word or symbol, string literals collapsed to `'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) text: String,
    pub(crate) line: usize,
}

/// Tokenizes SQL, dropping `--` and `/* */` comments; identifiers are lower-cased and
/// unquoted, string literals become a single `'` token.
pub(crate) fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                line += usize::from(chars[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            let start_line = line;
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        text.push(c);
                        i += 2;
                        continue;
                    }
                    break;
                }
                line += usize::from(chars[i] == '\n');
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            let text = if c == '"' {
                text.to_lowercase()
            } else {
                "'".into()
            };
            tokens.push(Token {
                text,
                line: start_line,
            });
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect::<String>().to_lowercase();
            tokens.push(Token { text, line });
        } else if c == '&' && next == Some('&') {
            tokens.push(Token {
                text: "&&".into(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// Index of the first occurrence of `words` as consecutive tokens at or after `from`.
fn find(tokens: &[Token], from: usize, words: &[&str]) -> Option<usize> {
    (from..tokens.len().saturating_sub(words.len() - 1)).find(|&i| {
        words
            .iter()
            .enumerate()
            .all(|(k, w)| tokens[i + k].text == *w)
    })
}

/// A migration file: `<version>_<description>.sql`.
#[derive(Debug)]
struct Migration {
    version: i64,
    path: String,
    text: String,
}

pub(crate) fn check(cx: &Context) -> CheckResult {
    let mut check = Check::new(
        "migrations",
        "PostgreSQL and SQLite migrations are present and ordered, create the overlap guarantee \
         (btree_gist + exclusion constraint; triggers), and never CREATE INDEX CONCURRENTLY \
         inside a transaction",
    );
    let postgres = load(cx, &mut check, POSTGRES_DIR);
    let sqlite = load(cx, &mut check, SQLITE_DIR);
    for migration in postgres.iter().chain(&sqlite) {
        check_concurrently(&mut check, migration);
    }
    if !postgres.is_empty() {
        check_postgres(&mut check, &postgres);
    }
    if !sqlite.is_empty() {
        check_sqlite(&mut check, &sqlite);
    }
    check.finish()
}

fn load(cx: &Context, check: &mut Check, dir: &str) -> Vec<Migration> {
    let entries = match std::fs::read_dir(cx.repo.path(dir)) {
        Ok(entries) => entries,
        Err(_) => {
            check.fail(
                At::file(dir),
                "folder missing",
                format!("create {dir} with the schema migrations (0001_initial.sql)"),
            );
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    let mut versions: BTreeMap<i64, String> = BTreeMap::new();
    let mut migrations = Vec::new();
    for name in names {
        let path = format!("{dir}/{name}");
        let version = name
            .split_once('_')
            .and_then(|(v, _)| v.parse::<i64>().ok());
        let Some(version) = version.filter(|v| *v > 0) else {
            check.fail(
                At::file(&path),
                "name is not <version>_<description>.sql",
                "rename it, e.g. 0002_add_index.sql (sqlx orders by the number)",
            );
            continue;
        };
        if name.ends_with(".down.sql") {
            continue;
        }
        if let Some(other) = versions.insert(version, path.clone()) {
            check.fail(
                At::file(&path),
                format!("version {version} is also used by {other}"),
                "give every migration its own version number",
            );
        }
        match read_text(&cx.repo.path(&path)) {
            FileText::Text(text) => migrations.push(Migration {
                version,
                path,
                text,
            }),
            FileText::Missing => {}
            FileText::Unreadable(why) => {
                check.fail(At::file(&path), why, "migrations must be UTF-8 SQL text")
            }
        }
    }
    if migrations.is_empty() && versions.is_empty() {
        check.fail(
            At::file(dir),
            "no migrations",
            format!("add {dir}/0001_initial.sql"),
        );
    }
    migrations.sort_by_key(|m| m.version);
    migrations
}

fn check_concurrently(check: &mut Check, migration: &Migration) {
    let no_transaction = migration
        .text
        .lines()
        .next()
        .is_some_and(|l| l.trim() == "-- no-transaction");
    if no_transaction {
        return;
    }
    let tokens = tokenize(&migration.text);
    if let Some(token) = tokens.iter().find(|t| t.text == "concurrently") {
        check.fail(
            At::line(&migration.path, Some(token.line)),
            "CONCURRENTLY inside a transactional migration: PostgreSQL refuses it in a transaction",
            "move it to its own migration whose first line is `-- no-transaction`",
        );
    }
}

fn check_postgres(check: &mut Check, migrations: &[Migration]) {
    let mut extension = None;
    let mut exclusion = None;
    for migration in migrations {
        let tokens = tokenize(&migration.text);
        if extension.is_none()
            && let Some(i) = find(&tokens, 0, &["create", "extension"])
            && tokens[i + 2..]
                .iter()
                .take(5)
                .any(|t| t.text == "btree_gist")
        {
            extension = Some(At::line(&migration.path, Some(tokens[i].line)));
        }
        let mut from = 0;
        while exclusion.is_none()
            && let Some(i) = find(&tokens, from, &["exclude", "using", "gist", "("])
        {
            from = i + 1;
            let body = group(&tokens, i + 3);
            let has = |words: &[&str]| find(body, 0, words).is_some();
            if has(&["accommodation_id", "with", "="])
                && body
                    .windows(2)
                    .any(|w| w[0].text == "with" && w[1].text == "&&")
            {
                exclusion = Some(At::line(&migration.path, Some(tokens[i].line)));
            }
        }
    }
    let first = &migrations[0].path;
    match extension {
        Some(at) => check.pass(at, "CREATE EXTENSION btree_gist"),
        None => check.fail(
            At::file(first),
            "no CREATE EXTENSION btree_gist",
            "add CREATE EXTENSION IF NOT EXISTS btree_gist; before the exclusion constraint",
        ),
    }
    match exclusion {
        Some(at) => check.pass(at, "EXCLUDE USING gist (accommodation_id WITH =, <range> WITH &&)"),
        None => check.fail(
            At::file(first),
            "no exclusion constraint over accommodation_id and the date range",
            "add EXCLUDE USING gist (accommodation_id WITH =, period WITH &&) WHERE (status IN ('pre_reserved', 'confirmed'))",
        ),
    }
}

/// The tokens inside the parenthesis opening at `open`.
fn group(tokens: &[Token], open: usize) -> &[Token] {
    let mut depth = 0;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" => depth += 1,
            ")" => {
                depth -= 1;
                if depth == 0 {
                    return &tokens[open + 1..i];
                }
            }
            _ => {}
        }
    }
    &tokens[open.min(tokens.len())..]
}

fn check_sqlite(check: &mut Check, migrations: &[Migration]) {
    for event in ["insert", "update"] {
        let mut found = None;
        for migration in migrations {
            let tokens = tokenize(&migration.text);
            let mut from = 0;
            while found.is_none()
                && let Some(i) = find(&tokens, from, &["create", "trigger"])
            {
                from = i + 1;
                let end = find(&tokens, i, &["end"]).unwrap_or(tokens.len());
                let body = &tokens[i..end];
                let on = find(body, 0, &["on", "reservations"]);
                let fires = body.iter().take(on.unwrap_or(0)).any(|t| t.text == event);
                if on.is_some() && fires && find(body, 0, &["raise", "(", "abort"]).is_some() {
                    found = Some(At::line(&migration.path, Some(tokens[i].line)));
                }
            }
        }
        match found {
            Some(at) => check.pass(at, format!("overlap trigger on {event} of reservations")),
            None => check.fail(
                At::file(&migrations[0].path),
                format!("no trigger that aborts overlapping reservations on {event}"),
                format!("add CREATE TRIGGER ... BEFORE {} ON reservations ... SELECT RAISE(ABORT, 'date_overlap') WHERE EXISTS (overlap)", event.to_uppercase()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_strings_are_not_sql() {
        let tokens = tokenize(
            "-- CREATE INDEX CONCURRENTLY\n/* concurrently\n */ SELECT 'concurrently', \"Name\";",
        );
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, vec!["select", "'", ",", "name", ";"]);
        assert_eq!(tokens[0].line, 3);
    }

    #[test]
    fn finds_token_sequences() {
        let tokens = tokenize("CREATE  EXTENSION\nIF NOT EXISTS btree_gist;");
        assert_eq!(find(&tokens, 0, &["create", "extension"]), Some(0));
        assert_eq!(find(&tokens, 1, &["create", "extension"]), None);
    }
}
