//! The one HTML, XML and Markdown escapers of the crate. Reports and summaries show
//! text taken from records, and records arrive from a shared git ref anyone with push access
//! writes to: a field may hold `<script>`, a `javascript:` link or a line starting `# GO`.
//! Every record-derived field goes through one of these before it is rendered.

/// `text` safe in HTML text and in a double- or single-quoted attribute value.
pub fn html(text: &str) -> String {
    entities(text, "&#39;", |c, out| out.push(c))
}

/// `text` safe in XML 1.0 attributes and content (JUnit reports): line breaks kept as
/// `&#10;` in attributes, tabs and carriage returns as spaces, and the characters XML 1.0
/// cannot hold dropped.
pub fn xml(text: &str) -> String {
    entities(text, "&apos;", |c, out| match c {
        '\n' => out.push_str("&#10;"),
        '\t' | '\r' => out.push(' '),
        c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
        c => out.push(c),
    })
}

/// `text` with `&`, `<`, `>` and `"` written as entities, `'` as `apostrophe` (HTML 4 has no
/// `&apos;`), and every other character as `other` writes it.
fn entities(text: &str, apostrophe: &str, other: impl Fn(char, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            c => other(c, &mut out),
        }
    }
    out
}

/// `text` as one inline run of Markdown, safe in a table cell, a list item, a heading or a
/// sentence: line breaks become `<br>` (so no line of it can start a heading, list or
/// table), `|`, `\`, and the brackets and backticks of links and code spans are
/// backslash-escaped,
/// a `<` that could open a tag or an autolink is written `&lt;` (so `p95 < 200 ms` stays
/// readable), and a leading block marker (`#`, `>`, `-`, `+`, `=`) is escaped.
pub fn markdown_inline(text: &str) -> String {
    let text = text.trim();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    if let Some(first) = chars.peek()
        && matches!(first, '#' | '>' | '-' | '+' | '=')
    {
        out.push('\\');
    }
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\n' => out.push_str("<br>"),
            '\\' | '|' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                out.push_str("&lt;")
            }
            '&' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#') =>
            {
                // An entity would turn back into the character it names.
                out.push_str("&amp;")
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn markdown_inline_cannot_start_blocks_links_or_tags() {
        assert_eq!(markdown_inline("a | b\nc"), "a \\| b<br>c");
        assert_eq!(
            markdown_inline("p95 1.2 ms < 200 ms"),
            "p95 1.2 ms < 200 ms"
        );
        assert_eq!(
            markdown_inline("<script>x</script>"),
            "&lt;script>x&lt;/script>"
        );
        assert_eq!(markdown_inline("x\n# GO"), "x<br># GO");
        assert_eq!(markdown_inline("# GO"), "\\# GO");
        assert_eq!(
            markdown_inline("[click](javascript:alert(1))"),
            "\\[click\\](javascript:alert(1))"
        );
        assert_eq!(markdown_inline("`code` \\[x]"), "\\`code\\` \\\\\\[x\\]");
        assert_eq!(markdown_inline("&lt;b&gt;"), "&amp;lt;b&amp;gt;");
    }

    /// Whatever a field holds, rendered through pulldown-cmark inside a table cell it stays
    /// one cell of text: no tag, no link, no heading, no extra column.
    #[test]
    fn hostile_fields_stay_text_in_a_rendered_table() {
        use pulldown_cmark::{Event, Options, Parser, Tag};
        let hostile = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "![x](javascript:alert(1))",
            "<javascript:alert(1)>",
            "a\\|b | c",
            "x\n# GO\n| a | b |",
            "\\[x\\](javascript:alert(1))",
            "`a|b` ``c``",
        ];
        for field in hostile {
            let markdown = format!(
                "| a | b |\n| --- | --- |\n| {} | end |\n",
                markdown_inline(field)
            );
            let events: Vec<Event> = Parser::new_ext(&markdown, Options::ENABLE_TABLES).collect();
            let cells = events
                .iter()
                .filter(|e| matches!(e, Event::Start(Tag::TableCell)))
                .count();
            assert_eq!(cells, 4, "{field:?} → {markdown:?}");
            for event in &events {
                assert!(
                    !matches!(
                        event,
                        Event::Html(_)
                            | Event::InlineHtml(_)
                            | Event::Start(
                                Tag::Link { .. } | Tag::Image { .. } | Tag::Heading { .. }
                            )
                    ) || matches!(event, Event::InlineHtml(h) if h.as_ref() == "<br>"),
                    "{field:?} → {event:?}"
                );
            }
        }
    }
}
