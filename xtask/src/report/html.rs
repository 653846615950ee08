//! A report as a standalone HTML page: pulldown-cmark with tables and task lists, wrapped in
//! a minimal page with inline CSS so it opens anywhere without assets.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;\
padding:0 1rem;line-height:1.45;color:#1b1f24}table{border-collapse:collapse;margin:1rem 0}\
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:3px}\
blockquote{border-left:4px solid #d0d7de;margin:0;padding:0 1rem;color:#57606a}";

/// The heading the history template opens with, as pulldown-cmark renders it.
const HISTORY_HEADING: &str = "<h2>History</h2>";

/// Renders Markdown to a whole HTML page titled `title`, with `chart` (inline SVG, drawn by the
/// report, never from a record's text) placed under the History heading, or at the end when a
/// template override dropped that heading.
pub fn page_with_chart(title: &str, markdown: &str, chart: Option<&str>) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    let mut body = String::with_capacity(markdown.len() * 2);
    html::push_html(
        &mut body,
        untrusted_markup_as_text(Parser::new_ext(markdown, options)),
    );
    if let Some(chart) = chart {
        let figure = format!("<figure class=\"history-chart\">\n{chart}</figure>\n");
        match body.find(HISTORY_HEADING) {
            Some(at) => body.insert_str(at + HISTORY_HEADING.len() + 1, &figure),
            None => body.push_str(&figure),
        }
    }
    let title = crate::escape::html(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

/// The report's Markdown holds record fields, and records come from a shared ref: whatever
/// escaping a template forgot, no tag but the `<br>` of table cells reaches the page (any
/// other HTML is shown as text), and only http(s) links and images are kept (a
/// `javascript:` or `data:` link becomes its text).
fn untrusted_markup_as_text<'a>(
    events: impl Iterator<Item = Event<'a>>,
) -> impl Iterator<Item = Event<'a>> {
    let mut dropped_links = Vec::new();
    events.filter_map(move |event| match event {
        Event::Html(markup) | Event::InlineHtml(markup) => {
            if matches!(markup.trim(), "<br>" | "<br/>" | "<br />") {
                Some(Event::InlineHtml(CowStr::Borrowed("<br>")))
            } else if markup.trim() == super::stability::SVG_MARKER {
                // Where the report draws the stability timeline, replaced after rendering.
                Some(Event::Html(CowStr::Borrowed(super::stability::SVG_MARKER)))
            } else {
                Some(Event::Text(markup))
            }
        }
        Event::Start(Tag::Link { ref dest_url, .. } | Tag::Image { ref dest_url, .. }) => {
            let safe = is_http(dest_url);
            dropped_links.push(!safe);
            safe.then_some(event)
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            let dropped = dropped_links.pop().unwrap_or(false);
            (!dropped).then_some(event)
        }
        event => Some(event),
    })
}

fn is_http(url: &str) -> bool {
    let url = url.trim().to_ascii_lowercase();
    url.starts_with("https://") || url.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_task_lists_become_html() {
        let page = page_with_chart(
            "a <b>",
            "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n- [x] done\n",
            None,
        );
        assert!(page.contains("<table>"), "{page}");
        assert!(page.contains("type=\"checkbox\""), "{page}");
        assert!(page.contains("<title>a &lt;b&gt;</title>"), "{page}");
    }

    /// Markup a template let through unescaped still reaches the page as text only.
    #[test]
    fn raw_html_and_non_http_links_become_text() {
        let markdown = "<script>alert(1)</script>\n\n| a |\n| --- |\n| x<br>y <img src=x onerror=alert(1)> |\n\n\
             [go](javascript:alert(1)) [ok](https://fly.io) ![i](data:image/png;base64,AA)\n";
        let page = page_with_chart("t", markdown, None);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("javascript:"), "{page}");
        assert!(!page.contains("data:image"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(page.contains("x<br>y"), "{page}");
        assert!(page.contains("<a href=\"https://fly.io\">ok</a>"), "{page}");
        assert!(
            page.contains("<p>go <a"),
            "the link became its text: {page}"
        );
    }
}
