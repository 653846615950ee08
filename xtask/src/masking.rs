//! One masker for secret values, wherever text may echo them: flyctl's output shown to the
//! user, and records before they leave this machine. A secret rarely comes back as typed:
//! error messages quote it as JSON, Go's `%q` or bash's `printf %q` (see [`forms`]), so each
//! value is looked for in all those forms, in one pass over the text.

pub mod forms;

use aho_corasick::{AhoCorasick, MatchKind};

/// What replaces a secret in masked text.
pub const MASK: &str = "****";

/// Secret values (each with where it came from) and every form in which text may echo them.
/// Its `Debug` shows counts only: the patterns are the secrets.
#[derive(Clone, Default)]
pub struct Masker {
    /// Where each value came from (`JWT_SECRET in env/.env.fly.staging`), for messages.
    origins: Vec<String>,
    /// Every form of every value, and the index of its origin.
    patterns: Vec<(String, usize)>,
    automaton: std::sync::OnceLock<Option<AhoCorasick>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Masker({} values, {} forms)",
            self.origins.len(),
            self.patterns.len()
        )
    }
}

impl Masker {
    /// Adds `value` (and each of its lines, for multi-line values), in all its echoed forms.
    /// Pieces shorter than `shortest` characters are left out: they would mask ordinary
    /// words (`true`, `5432`) and cannot be told apart from them anyway.
    pub fn add(&mut self, value: &str, origin: &str, shortest: usize) {
        let index = self.origins.len();
        let mut added = false;
        for piece in std::iter::once(value).chain(value.lines()) {
            let piece = piece.trim();
            if piece.chars().count() < shortest {
                continue;
            }
            for form in forms::echoed_forms(piece) {
                if !self.patterns.iter().any(|(p, _)| *p == form) {
                    self.patterns.push((form, index));
                    added = true;
                }
            }
        }
        if added {
            self.origins.push(origin.to_string());
            self.automaton = std::sync::OnceLock::new();
        }
    }

    /// The search over every form, built on first use after the last [`Masker::add`].
    fn automaton(&self) -> Option<&AhoCorasick> {
        if self.patterns.is_empty() {
            return None;
        }
        self.automaton
            .get_or_init(|| {
                // Leftmost-longest: a whole value is masked before any of its lines.
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(self.patterns.iter().map(|(p, _)| p.as_str()))
                    .ok()
            })
            .as_ref()
    }

    /// Whether no value is known.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every form of every value replaced by [`MASK`], and whether any was.
    pub fn mask(&self, text: &str) -> (String, bool) {
        let Some(automaton) = self.automaton() else {
            return self.mask_slowly(text);
        };
        if !automaton.is_match(text) {
            return (text.to_string(), false);
        }
        let masks = vec![MASK; self.patterns.len()];
        (automaton.replace_all(text, &masks), true)
    }

    /// Without the automaton (none built: too many forms for its limits), one form at a
    /// time, longest first; never unmasked.
    fn mask_slowly(&self, text: &str) -> (String, bool) {
        let mut forms: Vec<&str> = self.patterns.iter().map(|(p, _)| p.as_str()).collect();
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let mut masked = text.to_string();
        let mut changed = false;
        for form in forms {
            if masked.contains(form) {
                masked = masked.replace(form, MASK);
                changed = true;
            }
        }
        (masked, changed)
    }

    /// Where the first value found in `text` came from, if `text` holds any.
    pub fn find(&self, text: &str) -> Option<&str> {
        let origin = match self.automaton() {
            Some(automaton) => self.patterns[automaton.find(text)?.pattern().as_usize()].1,
            None => {
                self.patterns
                    .iter()
                    .find(|(p, _)| text.contains(p.as_str()))?
                    .1
            }
        };
        Some(self.origins[origin].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "s3cr\"et\n\x01-\tvalue<&>é";

    /// Each echo below is what the named program prints for VALUE (bash 5.2.15 in a UTF-8
    /// locale; Go's strconv.Quote; JSON with every or only control characters as \uXXXX).
    #[test]
    fn escaped_echoes_are_masked() {
        let mut masker = Masker::default();
        masker.add(VALUE, "TOKEN", 6);
        let echoes = [
            r#"printf: $'s3cr"et\n\001-\tvalue<&>é'"#,
            r#"go: "s3cr\"et\n\x01-\tvalue<&>é""#,
            r#"go+q: "s3cr\"et\n\x01-\tvalue<&>\u00e9""#,
            r#"json: "\u0073\u0033\u0063\u0072\u0022\u0065\u0074\u000a\u0001\u002d\u0009\u0076\u0061\u006c\u0075\u0065\u003c\u0026\u003e\u00e9""#,
            r#"json: "s3cr\"et\u000A\u0001-\u0009value<&>é""#,
            r#"go json: "s3cr\"et\n\u0001-\tvalue\u003c\u0026\u003eé""#,
        ];
        for echo in echoes {
            let (masked, changed) = masker.mask(echo);
            assert!(changed, "{echo}");
            for fragment in ["s3cr", "value", "\\u0076\\u0061", "\\u0001-"] {
                assert!(!masked.contains(fragment), "{fragment} left in {masked}");
            }
            // And inside a record, where each echo is JSON-escaped once more.
            let record = serde_json::json!({ "error": echo }).to_string();
            let (masked, _) = masker.mask(&record);
            assert!(!masked.contains("s3cr"), "{masked}");
            assert!(!masked.contains("\\\\u0076\\\\u0061"), "{masked}");
            assert_eq!(masker.find(&record), Some("TOKEN"));
        }
    }

    #[test]
    fn short_values_and_unrelated_text_are_left() {
        let mut masker = Masker::default();
        masker.add("ab", "SHORT", 4);
        masker.add("longer-secret", "LONG", 4);
        assert_eq!(masker.mask("ab cd").0, "ab cd");
        assert_eq!(masker.find("nothing here"), None);
        assert_eq!(masker.mask("x longer-secret y").0, "x **** y");
        assert!(format!("{masker:?}").starts_with("Masker(1 values"));
        assert!(!format!("{masker:?}").contains("longer"));
    }
}
