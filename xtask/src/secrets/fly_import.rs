//! The text `flyctl secrets import` reads on stdin, both ways: an encoder that writes values
//! so fly reads back exactly the same bytes, and a decoder that follows fly's current parser
//! (superfly/flyctl `internal/command/secrets/parser.go`; the value rules live in
//! [`crate::predeploy::envfile::read_value`], shared with predeploy) to prove it.
//!
//! The encoder writes every single-line value in double quotes, which every version of fly's
//! parser strips exactly once, and refuses (naming the key) the few values no quoting carries:
//! a `#` after an odd number of `"` (fly would start a comment there), a value starting with
//! `""` (it would read as `"""`), `"""` inside a multi-line value, carriage returns and NULs.

use anyhow::bail;

/// One `NAME=VALUE` read from an import text, with the line it started on (1-based).
#[derive(Clone, PartialEq, Eq)]
pub struct ImportEntry {
    /// The secret's name.
    pub name: String,
    /// Its value, exactly as fly would store it.
    pub value: String,
    /// The line the entry starts on.
    pub line: usize,
}

impl std::fmt::Debug for ImportEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ImportEntry({}=<{} bytes hidden>, line {})",
            self.name,
            self.value.len(),
            self.line
        )
    }
}

/// The longest line fly's reader takes (Go's `bufio.Scanner` default); longer lines end its
/// input silently, so the encoder refuses them instead.
pub const MAX_LINE_BYTES: usize = 64 * 1024 - 1;

const TRIPLE: &str = "\"\"\"";

/// Encodes `(name, value)` pairs so that fly's import parser yields exactly these values.
/// Refuses, naming the key (never the value), what fly cannot carry.
pub fn encode_for_fly_import<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> anyhow::Result<String> {
    let mut text = String::new();
    for (name, value) in entries {
        let encoded = encode_one(name, value)?;
        if encoded.lines().any(|line| line.len() > MAX_LINE_BYTES) {
            bail!("{name}: a line of its value is longer than fly's import reader takes (64 KiB)");
        }
        text.push_str(&encoded);
        text.push('\n');
    }
    Ok(text)
}

fn encode_one(name: &str, value: &str) -> anyhow::Result<String> {
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        bail!(
            "`{name}` is not a valid secret name (letters, digits and _, not starting with a digit)"
        );
    }
    if value.contains('\0') {
        bail!("{name}: the value contains a NUL byte, which no environment variable can hold");
    }
    if value.contains('\r') {
        bail!(
            "{name}: the value contains a carriage return, which fly's import reader drops at line ends; save the env file with Unix line endings"
        );
    }
    if value.contains('\n') {
        // Multi-line: `"""` opens on the first line, the line ending in `"""` closes it.
        if value.contains(TRIPLE) {
            bail!(
                "{name}: a multi-line value cannot contain \"\"\" (fly's import syntax ends the value there)"
            );
        }
        let first_line = value.split('\n').next().unwrap_or_default();
        refuse_comment_cut(name, &format!("{TRIPLE}{first_line}"))?;
        return Ok(format!("{name}={TRIPLE}{value}{TRIPLE}"));
    }
    // Always quoted: fly strips one pair of double quotes, so leading spaces, quotes of the
    // value's own and trailing spaces all survive, under old and current parsers alike.
    let quoted = format!("\"{value}\"");
    if quoted.starts_with(TRIPLE) {
        bail!(
            "{name}: a value starting with a double quote followed by another (or a lone one) cannot be written so that fly reads it back unchanged"
        );
    }
    refuse_comment_cut(name, &quoted)?;
    Ok(format!("{name}={quoted}"))
}

/// fly cuts a line at a `#` preceded by an even number of `"`; refuse an encoding where that
/// would happen inside the value.
fn refuse_comment_cut(name: &str, encoded_first_line: &str) -> anyhow::Result<()> {
    if let Some(at) = encoded_first_line.find('#')
        && encoded_first_line[..at]
            .matches('"')
            .count()
            .is_multiple_of(2)
    {
        bail!(
            "{name}: the value has a `#` after an odd number of double quotes, which fly reads as the start of a comment; no quoting carries it"
        );
    }
    Ok(())
}

/// Parses an import text the way `flyctl secrets import` does. A later entry of the same name
/// wins, as in fly's map; all entries are returned in order so callers can spot duplicates.
pub fn decode_fly_import(text: &str) -> anyhow::Result<Vec<ImportEntry>> {
    use crate::predeploy::envfile::{ValueStart, read_value};
    let mut entries = Vec::new();
    let mut open: Option<ImportEntry> = None;
    // `lines` splits like Go's line scanner: at `\n`, dropping one `\r` before it.
    for (index, line) in text.lines().enumerate() {
        if let Some(entry) = open.as_mut() {
            if let Some(last) = line.strip_suffix(TRIPLE) {
                entry.value.push_str(last);
                entries.push(open.take().expect("an open multi-line value"));
            } else {
                entry.value.push_str(line);
                entry.value.push('\n');
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, raw)) = line.split_once('=') else {
            bail!("line {}: secrets must be NAME=VALUE pairs", index + 1);
        };
        let name = name.trim().to_string();
        let entry = |value: &str| ImportEntry {
            name: name.clone(),
            value: value.to_string(),
            line: index + 1,
        };
        match read_value(raw) {
            ValueStart::Complete { value, .. } => entries.push(entry(value)),
            ValueStart::Multiline(first) => {
                let mut started = entry(first);
                started.value.push('\n');
                open = Some(started);
            }
            // fly slices `value[1:0]` here and crashes; report it instead.
            ValueStart::LoneQuote => bail!(
                "line {}: {name} is a lone quote, which crashes fly's parser",
                index + 1
            ),
        }
    }
    if let Some(entry) = open {
        // fly silently drops an unterminated multi-line value; treat it as the error it is.
        bail!(
            "line {}: the multi-line value of {} is never closed with \"\"\"",
            entry.line,
            entry.name
        );
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(pairs: &[(&str, &str)]) {
        let text = encode_for_fly_import(pairs.iter().copied()).unwrap();
        let decoded: Vec<(String, String)> = decode_fly_import(&text)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect();
        let expected: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(decoded, expected, "encoded as:\n{text}");
        // predeploy validates env files with its own strict reader; what the encoder writes
        // must pass it with the same values.
        let strict = crate::predeploy::envfile::parse_env_file(&text)
            .unwrap_or_else(|problems| panic!("predeploy rejects the encoding: {problems:?}"));
        let strict: Vec<(String, String)> = strict
            .into_iter()
            .map(|e| (e.key, e.value.expose().to_string()))
            .collect();
        assert_eq!(strict, expected, "predeploy reads the encoding differently");
    }

    #[test]
    fn decoder_follows_the_current_parser() {
        let text = "A=p#ss\nB=\"p#ss\"\nC='single'\nD=\"\"\"one line\"\"\"\nE=kept # note\n";
        let got: Vec<(String, String)> = decode_fly_import(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect();
        let want = [
            ("A", "p"),
            ("B", "p#ss"),
            ("C", "single"),
            ("D", "one line"),
            ("E", "kept"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn decoder_follows_flys_parser_tests() {
        let text = "\n# comment\n\nFOO=BAR\nMULTILINE=\"\"\"SOMETHING\nANOTHER LINE\n\nENDSHERE\"\"\"\n\
                    TRAILERENV=what\nQ=\"BAR BAZ\"\nS = BAR\r\nC=BAR,BAZ\n";
        let entries = decode_fly_import(text).unwrap();
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("FOO", "BAR"),
                ("MULTILINE", "SOMETHING\nANOTHER LINE\n\nENDSHERE"),
                ("TRAILERENV", "what"),
                ("Q", "BAR BAZ"),
                ("S", "BAR"),
                ("C", "BAR,BAZ"),
            ]
        );
        assert_eq!(entries[2].line, 9);
    }

    #[test]
    fn awkward_values_survive_the_round_trip() {
        round_trip(&[
            (
                "PLAIN",
                "postgresql://app:p@ss=w#rd@db.internal:5432/cabanas?sslmode=require",
            ),
            ("HASH", "#starts-with-hash"),
            ("GLUED_HASH", "p@ss#word"),
            ("SPACED_HASH", "value # not a comment"),
            ("QUOTED_HASH", "say \"hi\" #1"),
            ("MULTI_HASH", "first#line\nsecond # line"),
            ("EQUALS", "=a=b="),
            ("QUOTED", "\"in quotes\""),
            ("HALF_QUOTED", "\"only at the start"),
            ("ENDS_QUOTE", "ends with\""),
            ("SINGLE", "'single'"),
            ("SPACES", "  padded  "),
            ("TAB", "\tTabbed"),
            ("EMPTY", ""),
            ("BACKSLASH", r"a\nb\\c"),
            ("TRIPLE_INSIDE", "a\"\"\"b"),
            (
                "MULTI",
                "-----BEGIN KEY-----\nabc=\n# not a comment\n\n  indented\n-----END KEY-----",
            ),
            ("MULTI_EDGES", "\nstarts and ends with newline\n"),
            ("UNICODE", "contraseña ñandú"),
        ]);
    }

    #[test]
    fn unencodable_values_are_refused_by_name_only() {
        for (name, value) in [
            ("A", "line\nwith \"\"\" inside"),
            ("B", "\"\"\"starts with three"),
            ("C", "\"\"two quotes then text\""),
            ("D", "carriage\rreturn"),
            ("E", "\""),
            ("F", "odd\"quote#then hash"),
            ("G", "x\"first line#cut\nsecond"),
        ] {
            let error = encode_for_fly_import([(name, value)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(&format!("{name}:")), "{error}");
            assert!(!error.contains(value), "{error}");
        }
        assert!(encode_for_fly_import([("1BAD", "x")]).is_err());
        let long = "x".repeat(MAX_LINE_BYTES);
        assert!(encode_for_fly_import([("LONG", long.as_str())]).is_err());
    }

    #[test]
    fn unclosed_multiline_and_bad_lines_are_errors() {
        assert!(decode_fly_import("A=\"\"\"open\nno end\n").is_err());
        assert!(decode_fly_import("no equals sign\n").is_err());
        assert!(decode_fly_import("A=\"\n").is_err());
    }
}
