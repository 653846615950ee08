//! A report as a standalone HTML page: pulldown-cmark with tables and task lists, wrapped in
//! a minimal page with inline CSS so it opens anywhere without assets.

use pulldown_cmark::{Options, Parser, html};

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
    html::push_html(&mut body, Parser::new_ext(markdown, options));
    if let Some(chart) = chart {
        let figure = format!("<figure class=\"history-chart\">\n{chart}</figure>\n");
        match body.find(HISTORY_HEADING) {
            Some(at) => body.insert_str(at + HISTORY_HEADING.len() + 1, &figure),
            None => body.push_str(&figure),
        }
    }
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
}
