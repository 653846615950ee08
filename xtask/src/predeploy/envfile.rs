//! Env files in the syntax `fly secrets import` reads, parsed as data: never executed, never
//! loaded into the process environment.
//!
//! The syntax, as flyctl's current parser (`internal/command/secrets/parser.go`) reads it,
//! implemented once in [`read_value`]:
//!
//! - one `NAME=VALUE` per line; the name is trimmed and leading spaces of the value dropped;
//!   no escapes, no variable expansion;
//! - blank lines and lines starting with `#` are ignored; a later `#` starts a comment when
//!   the text before it holds an even number of `"` (so `"p#ss"` keeps its `#`, and
//!   `p#ss` does not), and the spaces before the comment go with it;
//! - a value wrapped in double quotes, or in single quotes, has them stripped;
//! - `"""x"""` on one line is `x`; a value starting with `"""` otherwise spans lines: it ends
//!   on the first line that ends with `"""`, and the line breaks between are part of it.
//!
//! Stricter than fly, because fly accepts these silently and then imports something else
//! than the author meant: an `export ` prefix (fly would create a secret named
//! `export NAME`), a name that is not `[A-Za-z_][A-Za-z0-9_]*`, a line without `=`, CRLF line
//! endings, a lone quote as the value (fly's parser crashes on it), and a multi-line value
//! never closed. Problems name the line and, when known, the key; they never contain a value.

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
    /// A `#` right after a character of the value started a comment there: fly drops the rest
    /// of the line, which is rarely what the author meant (`p#ss` imports as `p`).
    pub hash_cut: bool,
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

/// What fly makes of the text after `=` on a line that is not inside a multi-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueStart<'a> {
    /// A complete value.
    Complete {
        /// The value as fly stores it.
        value: &'a str,
        /// A `#` glued to the value started a comment (see [`EnvEntry::hash_cut`]).
        hash_cut: bool,
    },
    /// The first line of a multi-line value (without its opening `"""`).
    Multiline(&'a str),
    /// A lone `"` or `'`, on which fly's parser crashes.
    LoneQuote,
}

/// Reads the text after the first `=` the way fly does (see the module docs).
pub fn read_value(raw: &str) -> ValueStart<'_> {
    let mut value = raw.trim_start_matches(' ');
    let mut hash_cut = false;
    if let Some(at) = value.find('#') {
        let before = &value[..at];
        if before.matches('"').count().is_multiple_of(2) {
            hash_cut = before.ends_with(|c: char| !c.is_whitespace());
            value = before.trim_end_matches(' ');
        }
    }
    if value.len() >= 6 && value.starts_with(TRIPLE) && value.ends_with(TRIPLE) {
        let inner = &value[3..value.len() - 3];
        return ValueStart::Complete {
            value: inner,
            hash_cut,
        };
    }
    if let Some(first) = value.strip_prefix(TRIPLE) {
        return ValueStart::Multiline(first);
    }
    if value == "\"" || value == "'" {
        return ValueStart::LoneQuote;
    }
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    ValueStart::Complete {
        value: unquoted,
        hash_cut,
    }
}

/// Parses env-file text (see the module docs for the syntax). Returns every entry in file
/// order, or every problem found; duplicates are returned as entries (a check judges them).
pub fn parse_env_file(text: &str) -> Result<Vec<EnvEntry>, Vec<EnvProblem>> {
    let (entries, problems) = read_env_file(text);
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// Every entry that could be read, and every problem, together: for the secret-hygiene scan,
/// which must look for the values of a file even when another of its lines is malformed.
pub fn read_env_file(text: &str) -> (Vec<EnvEntry>, Vec<EnvProblem>) {
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
                    hash_cut: false,
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
        match read_value(value) {
            ValueStart::Multiline(first) => {
                open = Some((key.to_string(), number, format!("{first}\n")));
            }
            ValueStart::LoneQuote => problems.push(EnvProblem {
                line: number,
                key: Some(key.to_string()),
                message: "is a lone quote, on which fly's import parser crashes: write `\"\"` \
                          for an empty value"
                    .into(),
            }),
            ValueStart::Complete { value, hash_cut } => entries.push(EnvEntry {
                key: key.to_string(),
                value: SecretValue(value.to_string()),
                line: number,
                hash_cut,
            }),
        }
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
    (entries, problems)
}

/// How to name a key in output. A secret pasted on a line of its own after an empty `KEY=`
/// parses as a key when it has `=` padding; printing such a "key" would print the secret. Keys
/// that do not look like names (UPPER_CASE words, a short single word) are named by line only.
pub fn shown_key(key: &str, line: usize) -> String {
    let name_like = key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && (key.contains('_') || key.len() <= 16);
    if name_like {
        key.to_string()
    } else {
        format!("the key on line {line} (name not shown: it looks like a value)")
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
                    URL=postgres://a:b@h/d?x=1#frag\nNOTE=kept # a comment\nH=\"p#ss\"\n\
                    T=\"\"\"one line\"\"\"\n";
        assert_eq!(
            values(text),
            vec![
                v("FOO", "BAR", 3),
                v("SPACED", "x y ", 4),
                v("Q", "quoted value", 5),
                v("S", "single", 6),
                v("URL", "postgres://a:b@h/d?x=1", 7),
                v("NOTE", "kept", 8),
                v("H", "p#ss", 9),
                v("T", "one line", 10),
            ]
        );
        let entries = parse_env_file(text).unwrap();
        let cut: Vec<&str> = entries
            .iter()
            .filter(|e| e.hash_cut)
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(cut, ["URL"], "only a # glued to the value is flagged");
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
    fn crlf_and_lone_quotes_are_problems() {
        let problems = parse_env_file("A=1\r\nB=2\n").unwrap_err();
        assert_eq!(problems[0].line, 1);
        assert!(problems[0].message.contains("CRLF"));
        let problems = parse_env_file("A=\"\n").unwrap_err();
        assert!(problems[0].message.contains("lone quote"));
    }

    #[test]
    fn keys_that_look_like_values_are_not_shown() {
        assert_eq!(shown_key("JWT_SECRET_KEY", 3), "JWT_SECRET_KEY");
        assert_eq!(shown_key("PORT", 3), "PORT");
        for pasted in [
            "Q2FuYXJ5U2VjcmV0VmFsdWUxMjM0NTY3ODkwYWJjZA",
            "ABCDEF0123456789ABCDEF0123456789",
        ] {
            let shown = shown_key(pasted, 3);
            assert!(
                !shown.contains(pasted) && shown.contains("line 3"),
                "{shown}"
            );
        }
    }

    #[test]
    fn secret_values_do_not_print() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value} {value:?}"), "**** SecretValue(****)");
    }
}
