//! Reading repository files as text, with problems reported instead of panics, and finding
//! the line a TOML key sits on (the parsed value does not keep it).

use std::path::Path;

/// A repository file read for a check.
#[derive(Debug)]
pub(crate) enum FileText {
    /// Not there.
    Missing,
    /// UTF-8 text without NUL bytes.
    Text(String),
    /// There, but not readable as text; the message says why (no content in it).
    Unreadable(String),
}

/// Reads `path` as text. Binary files (a NUL byte) and invalid UTF-8 are `Unreadable`.
pub(crate) fn read_text(path: &Path) -> FileText {
    match crate::files::read_capped(path, crate::files::CONFIG_LIMIT) {
        Ok(bytes) => {
            if bytes.contains(&0) {
                return FileText::Unreadable("is a binary file, expected text".into());
            }
            match String::from_utf8(bytes) {
                Ok(text) => FileText::Text(text),
                Err(e) => FileText::Unreadable(format!(
                    "is not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                )),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileText::Missing,
        Err(e) => FileText::Unreadable(format!("cannot be read: {e}")),
    }
}

/// The first line ending in CRLF, 1-based.
pub(crate) fn first_crlf_line(text: &str) -> Option<usize> {
    text.split('\n')
        .position(|line| line.ends_with('\r'))
        .map(|i| i + 1)
}

/// 1-based line of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line and a message of a TOML parse error (the message without the source excerpt,
/// which could echo a value).
pub(crate) fn toml_error(text: &str, error: &toml::de::Error) -> (Option<usize>, String) {
    let line = error.span().map(|span| line_of_offset(text, span.start));
    let column = error.span().map(|span| {
        let start = span.start.min(text.len());
        start - text[..start].rfind('\n').map_or(0, |i| i + 1) + 1
    });
    let message = error.message().trim().to_string();
    match column {
        Some(column) => (
            line,
            format!("is not valid TOML (column {column}): {message}"),
        ),
        None => (line, format!("is not valid TOML: {message}")),
    }
}

/// The line of `key` inside the TOML table `table` (dotted, e.g. `http_service.concurrency`;
/// empty for the top level). Handles `[table]`, `[[table]]` (the `nth` occurrence, 0-based)
/// and `key = ...` lines; good enough for locating findings, not a TOML parser.
pub(crate) fn toml_key_line(text: &str, table: &str, nth: usize, key: &str) -> Option<usize> {
    let mut seen = 0usize;
    let mut in_target = table.is_empty();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let name = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .replace(' ', "");
            in_target = name == table && {
                seen += 1;
                seen == nth + 1
            };
            if in_target && key.is_empty() {
                return Some(index + 1);
            }
            continue;
        }
        if !in_target || key.is_empty() {
            continue;
        }
        if let Some((name, _)) = trimmed.split_once('=')
            && name.trim().trim_matches('"') == key
        {
            return Some(index + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_tables_and_arrays_of_tables() {
        let text = "app = \"x\"\n[deploy]\nstrategy = \"rolling\"\n[[checks]]\npath = \"/a\"\n\
                    [[checks]]\npath = \"/b\"\n";
        assert_eq!(toml_key_line(text, "", 0, "app"), Some(1));
        assert_eq!(toml_key_line(text, "deploy", 0, "strategy"), Some(3));
        assert_eq!(toml_key_line(text, "checks", 1, "path"), Some(7));
        assert_eq!(toml_key_line(text, "checks", 0, ""), Some(4));
        assert_eq!(toml_key_line(text, "deploy", 0, "missing"), None);
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let text = "a = 1\nb = = 2\n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        let (line, message) = toml_error(text, &error);
        assert_eq!(line, Some(2));
        assert!(message.contains("column"), "{message}");
    }
}
