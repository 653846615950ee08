//! Env files in the syntax `fly secrets import` reads, parsed as data: never executed, never
//! loaded into the process environment.
//!
//! The syntax, as flyctl's own parser (`internal/command/secrets/parser.go`) implements it:
//!
//! - one `NAME=VALUE` per line; the name is trimmed, the value is everything after the first
//!   `=` with leading spaces removed and everything else kept literally: no escapes, no
//!   variable expansion, trailing spaces kept;
//! - blank lines and lines starting with `#` are ignored (a `#` later in a line is part of the
//!   value);
//! - a value wrapped in double quotes has them stripped; single quotes are *kept* by fly, so
//!   [`EnvEntry::single_quoted`] lets a check warn about them;
//! - a value starting with `"""` spans lines: it ends on the first line that ends with `"""`,
//!   and the line breaks between are part of it.
//!
//! Stricter than fly, because fly accepts these silently and then imports something else
//! than the author meant: an `export ` prefix (fly would create a secret named
//! `export NAME`), a name that is not `[A-Za-z_][A-Za-z0-9_]*`, a line without `=`, CRLF line
//! endings, a multi-line value never closed, and `"""` opened and closed on one line (fly
//! reads that as an unclosed multi-line value). Problems name the line and, when known, the
//! key; they never contain a value.

use std::fmt;

/// A value that may be secret: `Debug` and `Display` print `****`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> SecretValue {
        SecretValue(value.into())
    }

    /// The value itself; call it only where the value is consumed (a check, fly's stdin).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(****)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// One `NAME=VALUE` of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable name.
    pub key: String,
    /// The value as fly would import it.
    pub value: SecretValue,
    /// 1-based line where the entry starts.
    pub line: usize,
    /// The value was written between single quotes, which fly keeps as part of it.
    pub single_quoted: bool,
}

/// Why a line could not be read. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// 1-based line.
    pub line: usize,
    /// The key of the line, when it has one.
    pub key: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

const TRIPLE: &str = "\"\"\"";

/// Parses env-file text (see the module docs for the syntax). Returns every entry in file
/// order, or every problem found; duplicates are returned as entries (a check judges them).
pub fn parse_env_file(text: &str) -> Result<Vec<EnvEntry>, Vec<EnvProblem>> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    // (key, first line, value so far)
    let mut open: Option<(String, usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = match raw.strip_suffix('\r') {
            Some(stripped) => {
                problems.push(EnvProblem {
                    line: number,
                    key: None,
                    message: "ends with CRLF: convert the file to LF line endings \
                              (`sed -i 's/\\r$//' FILE`)"
                        .into(),
                });
                stripped
            }
            None => raw,
        };
        if let Some((key, start, mut value)) = open.take() {
            if let Some(last) = line.strip_suffix(TRIPLE) {
                value.push_str(last);
                entries.push(EnvEntry {
                    key,
                    value: SecretValue(value),
                    line: start,
                    single_quoted: false,
                });
            } else {
                value.push_str(line);
                value.push('\n');
                open = Some((key, start, value));
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(EnvProblem {
                line: number,
                key: None,
                message: "has no `=`: write NAME=VALUE (comments start with `#`)".into(),
            });
            continue;
        };
        let key = name.trim();
        if let Some(rest) = key.strip_prefix("export ") {
            problems.push(EnvProblem {
                line: number,
                key: Some(rest.trim().to_string()),
                message: "starts with `export`: remove `export` (fly would import a secret \
                          named `export ...`)"
                    .into(),
            });
            continue;
        }
        if !is_valid_key(key) {
            problems.push(EnvProblem {
                line: number,
                key: None,
                message: "the name before `=` is not a variable name: use letters, digits \
                          and `_`, not starting with a digit"
                    .into(),
            });
            continue;
        }
        let value = value.trim_start_matches(' ');
        if let Some(first) = value.strip_prefix(TRIPLE) {
            if first.ends_with(TRIPLE) {
                problems.push(EnvProblem {
                    line: number,
                    key: Some(key.to_string()),
                    message: "opens and closes `\"\"\"` on one line, which fly reads as an \
                              unclosed multi-line value: use plain double quotes"
                        .into(),
                });
                continue;
            }
            open = Some((key.to_string(), number, format!("{first}\n")));
            continue;
        }
        let single_quoted = value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'');
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner,
            None => value,
        };
        entries.push(EnvEntry {
            key: key.to_string(),
            value: SecretValue(value.to_string()),
            line: number,
            single_quoted,
        });
    }
    if let Some((key, start, _)) = open {
        problems.push(EnvProblem {
            line: start,
            key: Some(key),
            message: "starts a multi-line value with `\"\"\"` that is never closed: end it \
                      with a line ending in `\"\"\"`"
                .into(),
        });
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// Whether `key` is a portable environment variable name.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, String, usize)> {
        parse_env_file(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.expose().to_string(), e.line))
            .collect()
    }

    fn v(key: &str, value: &str, line: usize) -> (String, String, usize) {
        (key.into(), value.into(), line)
    }

    #[test]
    fn reads_what_fly_reads() {
        let text = "# comment\n\nFOO=BAR\nSPACED = x y \nQ=\"quoted value\"\nS='single'\n\
                    URL=postgres://a:b@h/d?x=1#frag\n";
        assert_eq!(
            values(text),
            vec![
                v("FOO", "BAR", 3),
                v("SPACED", "x y ", 4),
                v("Q", "quoted value", 5),
                v("S", "'single'", 6),
                v("URL", "postgres://a:b@h/d?x=1#frag", 7),
            ]
        );
        let entries = parse_env_file("S='single'\n").unwrap();
        assert!(entries[0].single_quoted);
    }

    #[test]
    fn multi_line_values_keep_their_line_breaks() {
        let text = "A=1\nKEY=\"\"\"first\nsecond\n\nlast\"\"\"\nB=2\n";
        assert_eq!(
            values(text),
            vec![
                v("A", "1", 1),
                v("KEY", "first\nsecond\n\nlast", 2),
                v("B", "2", 6)
            ]
        );
    }

    #[test]
    fn problems_name_line_and_key_never_the_value() {
        let text = "export JWT_SECRET=hunter2-canary\nNOEQUALS hunter2-canary\n\
                    1BAD=hunter2-canary\nM=\"\"\"hunter2-canary\n";
        let problems = parse_env_file(text).unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4]);
        assert_eq!(problems[0].key.as_deref(), Some("JWT_SECRET"));
        assert!(problems[0].message.contains("remove `export`"));
        assert!(problems[1].message.contains("no `=`"));
        assert!(problems[3].message.contains("never closed"));
        for problem in &problems {
            assert!(!format!("{problem:?}").contains("hunter2"), "{problem:?}");
        }
    }

    #[test]
    fn crlf_and_one_line_triple_quotes_are_problems() {
        let problems = parse_env_file("A=1\r\nB=2\n").unwrap_err();
        assert_eq!(problems[0].line, 1);
        assert!(problems[0].message.contains("CRLF"));
        let problems = parse_env_file("A=\"\"\"x\"\"\"\n").unwrap_err();
        assert!(problems[0].message.contains("one line"));
    }

    #[test]
    fn secret_values_do_not_print() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value} {value:?}"), "**** SecretValue(****)");
    }
}
