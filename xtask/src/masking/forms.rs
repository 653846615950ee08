//! The forms in which a program may echo a secret value: JSON as serde, Go's `encoding/json`,
//! Python's `json.dumps` and hand-rolled encoders write it; Go's `%q` and `%+q`; POSIX shell
//! quoting; bash's `printf %q` (backslashes, or `$'...'` once a control character appears).
//! Every form is given without its surrounding quotes, so it is found inside a longer quoted
//! string too, and also JSON-escaped once more, as it reads inside a saved record.
//!
//! Each form maps character by character, so a value quoted as part of a longer word reads
//! the same; the one exception (bash escapes `#` and `~` only at the start of a word) gets
//! both variants. The number of forms per value is fixed, each at most 8 times as long as the value.

/// Every echoed form of `value`, deduplicated, the value itself first.
pub fn echoed_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    forms.extend(json_forms(value));
    forms.extend(go_quoted(value));
    forms.extend(shell_forms(value));
    // As a saved record holds any of them: inside a JSON string.
    let in_records: Vec<String> = forms.iter().map(|f| json_serde(f)).collect();
    forms.extend(in_records);
    let mut seen = std::collections::BTreeSet::new();
    forms.retain(|f| !f.is_empty() && seen.insert(f.clone()));
    forms
}

/// serde_json's (and JavaScript's `JSON.stringify`'s) string escaping, without the quotes.
pub fn json_serde(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

/// JSON as other encoders write it.
fn json_forms(value: &str) -> Vec<String> {
    let serde = json_serde(value);
    // Go's encoding/json (HTML-safe by default) escapes `<`, `>`, `&`, U+2028, U+2029; before
    // Go 1.22 it wrote \b and \f as \u0008 and \u000c (covered by the control-only forms).
    // https://pkg.go.dev/encoding/json#Marshal
    let mut go = String::new();
    for c in serde.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => go.push_str(&u_escape(c, false)),
            c => go.push(c),
        }
    }
    // Python's json.dumps (ensure_ascii=True by default): every non-ASCII character as \uXXXX.
    let ascii: String = serde
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                u_escape(c, false)
            }
        })
        .collect();
    let mut forms = vec![serde, go, ascii];
    for upper in [false, true] {
        // Encoders that write every control character (\n and \t too) as \u00XX.
        let controls: String = value
            .chars()
            .map(|c| match c {
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                c if c.is_control() => u_escape(c, upper),
                c => c.to_string(),
            })
            .collect();
        // Every character as \uXXXX, the way some tools obfuscate or "ASCII-safe" a string.
        let every: String = value.chars().map(|c| u_escape(c, upper)).collect();
        forms.extend([controls, every]);
    }
    forms
}

/// `\uXXXX`, as a surrogate pair beyond the Basic Multilingual Plane.
fn u_escape(c: char, upper: bool) -> String {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units)
        .iter()
        .map(|u| {
            if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            }
        })
        .collect()
}

/// Go's `strconv.Quote` (`%q`) and `strconv.QuoteToASCII` (`%+q`), after `appendEscapedRune`
/// in https://github.com/golang/go/blob/master/src/strconv/quote.go.
fn go_quoted(value: &str) -> [String; 2] {
    let quote = |ascii_only: bool| -> String {
        let mut out = String::new();
        for c in value.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if go_prints(c) && (!ascii_only || c.is_ascii()) => out.push(c),
                '\x07' => out.push_str(r"\a"),
                '\x08' => out.push_str(r"\b"),
                '\x0c' => out.push_str(r"\f"),
                '\n' => out.push_str(r"\n"),
                '\r' => out.push_str(r"\r"),
                '\t' => out.push_str(r"\t"),
                '\x0b' => out.push_str(r"\v"),
                c if (c as u32) < 0x20 || c == '\x7f' => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        out
    };
    [quote(false), quote(true)]
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
/// Rust has no Unicode categories in std, so this knows control, space and the common format
/// characters; an unassigned code point in a secret would be missed (secrets are ASCII).
fn go_prints(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c,
                '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}'
                | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
                | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..))
}

/// POSIX shell quoting (inside single and double quotes) and bash's `printf %q`.
fn shell_forms(value: &str) -> Vec<String> {
    let single = value.replace('\'', r"'\''");
    let mut double = String::new();
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            double.push('\\');
        }
        double.push(c);
    }
    let mut forms = vec![single, double];
    forms.extend(bash_backslashed(value));
    forms.extend(bash_ansi_c(value));
    forms
}

/// bash's `printf %q` of a word without control characters: `sh_backslash_quote` with flags
/// 3 (https://git.savannah.gnu.org/cgit/bash.git/tree/lib/sh/shquote.c, its `bstab`), so
/// `a b$c` reads `a\ b\$c`. A leading `#` or `~` is escaped only at the start of the word:
/// both variants.
fn bash_backslashed(value: &str) -> [String; 2] {
    let mut inner = String::new();
    let mut previous = None;
    for c in value.chars() {
        let special = matches!(
            c,
            ' ' | '\t'
                | '\n'
                | '!'
                | '"'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | ';'
                | '<'
                | '>'
                | '?'
                | '['
                | '\\'
                | ']'
                | '^'
                | '`'
                | '{'
                | '|'
                | '}'
        ) || (c == '~' && matches!(previous, Some(':' | '=')));
        if special {
            inner.push('\\');
        }
        inner.push(c);
        previous = Some(c);
    }
    let at_word_start = if value.starts_with(['#', '~']) {
        format!("\\{inner}")
    } else {
        inner.clone()
    };
    [inner, at_word_start]
}

/// bash's `printf %q` once the word holds a character it cannot print: `ansic_quote`
/// (lib/sh/strtrans.c) writes `$'...'` with `\n`, `\t`, `\E`, ... and octal bytes, so
/// `a<newline>b` reads `$'a\nb'`. In a UTF-8 locale other characters stay as they are; in the
/// C locale every non-ASCII byte is octal. Checked against bash 5.2's own output.
fn bash_ansi_c(value: &str) -> Vec<String> {
    let quote = |c_locale: bool| -> String {
        let mut out = String::new();
        for c in value.chars() {
            match c {
                '\'' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '\x07' => out.push_str(r"\a"),
                '\x08' => out.push_str(r"\b"),
                '\x1b' => out.push_str(r"\E"),
                '\x0c' => out.push_str(r"\f"),
                '\n' => out.push_str(r"\n"),
                '\r' => out.push_str(r"\r"),
                '\t' => out.push_str(r"\t"),
                '\x0b' => out.push_str(r"\v"),
                c if c.is_control() || (c_locale && !c.is_ascii()) => {
                    let mut bytes = [0u8; 4];
                    for b in c.encode_utf8(&mut bytes).bytes() {
                        out.push_str(&format!("\\{b:03o}"));
                    }
                }
                c => out.push(c),
            }
        }
        out
    };
    if value.is_ascii() {
        vec![quote(false)]
    } else {
        vec![quote(false), quote(true)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(value: &str, form: &str) -> bool {
        echoed_forms(value).iter().any(|f| f == form)
    }

    /// Expected forms taken from bash 5.2.15 (`printf '%q\n' ...`) and Go's strconv docs.
    #[test]
    fn bash_printf_q_forms() {
        assert!(has("a b$c", r"a\ b\$c"));
        assert!(has("pa\"ss\\wo'rd", r#"pa\"ss\\wo\'rd"#));
        assert!(has("#x~y", r"\#x~y"));
        assert!(has("a:~b", r"a:\~b"));
        assert!(has("x\ny\tz\x01\x7f é", r"x\ny\tz\001\177 é"));
        assert!(has("x\ny\tz\x01\x7f é", r"x\ny\tz\001\177 \303\251"));
        assert!(has("\x1b\x7f\t", r"\E\177\t"));
        assert!(has("a\x01'\\b\"c", r#"a\001\'\\b"c"#));
    }

    #[test]
    fn go_quote_forms() {
        assert!(has("a\x01\x7f\tb\u{a0}é", r"a\x01\x7f\tb\u00a0é"));
        assert!(has("a\x01\x7f\tb\u{a0}é", r"a\x01\x7f\tb\u00a0\u00e9"));
        assert!(has("x\u{1F600}", r"x\U0001f600"));
    }

    #[test]
    fn json_u_escape_forms() {
        assert!(has("ab\n", r"\u0061\u0062\u000a"));
        assert!(has("ab\n", r"\u0061\u0062\u000A"));
        assert!(has("ab\n\x1f", r"ab\u000a\u001f"));
        assert!(has("ab\n\x1f", r"ab\n\u001f"));
        assert!(has("<é>", r"\u003cé\u003e"));
        assert!(has("<é>", r"<\u00e9>"));
        assert!(has("x\u{1F600}", r"x\ud83d\ude00"));
        // And once more as a record holds them.
        assert!(has("ab\n", r"\\u0061\\u0062\\u000a"));
        assert!(has(
            "a\nb",
            r"$'a\\nb'".trim_start_matches("$'").trim_end_matches('\'')
        ));
    }

    #[test]
    fn forms_stay_bounded() {
        let value = "\x01é".repeat(100);
        let forms = echoed_forms(&value);
        assert!(forms.len() <= 40, "{}", forms.len());
        assert!(
            forms.iter().all(|f| f.len() <= 8 * value.len()),
            "a form grew beyond its bound"
        );
    }
}
