//! Production readiness, read from the GitHub task lists of `ops/PROD_READINESS_CHECKLIST.md`
//! with pulldown-cmark: checked of total per section, and the open items.
//!
//! An item that carries `<!-- computed: KEY -->` is not ticked by hand: whether it is done comes
//! from the records ([`Evidence`], e.g. the newest backup's age), and its box is ignored. A
//! ticked box cannot claim a backup nobody took.

use std::collections::BTreeMap;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;

/// Path of the checklist, relative to the repository root.
pub const CHECKLIST_PATH: &str = "ops/PROD_READINESS_CHECKLIST.md";

/// Progress of the whole checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checklist {
    /// Sections with at least one task, in document order.
    pub sections: Vec<Section>,
    /// Checked items over all sections.
    pub checked: usize,
    /// All items.
    pub total: usize,
}

/// One section (the nearest heading above its tasks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The heading text.
    pub title: String,
    /// Checked items.
    pub checked: usize,
    /// All items.
    pub total: usize,
    /// The text of every unchecked item.
    pub open: Vec<String>,
}

impl Checklist {
    /// Whether every item is checked (and there is at least one).
    pub fn complete(&self) -> bool {
        self.total > 0 && self.checked == self.total
    }
}

/// What the records prove for the computed items, by key: done, and the sentence saying why.
pub type Evidence = BTreeMap<String, (bool, String)>;

/// The marker of a computed item, followed by its key and ` -->`.
const COMPUTED: &str = "<!-- computed:";

/// Parses Markdown task lists. Items outside any heading go to a section named `Checklist`.
/// Computed items are open (no evidence given).
#[cfg(test)]
fn parse(markdown: &str) -> Checklist {
    parse_with(markdown, &Evidence::new())
}

/// [`parse`], with the computed items decided by `evidence` (an item whose key `evidence`
/// lacks is open).
pub fn parse_with(markdown: &str, evidence: &Evidence) -> Checklist {
    let mut sections: Vec<Section> = Vec::new();
    let mut title = String::from("Checklist");
    let mut in_heading = false;
    let mut heading_text = String::new();
    // The task being read: whether checked, its text, and the list depth it sits at.
    let mut task: Option<(bool, String, usize)> = None;
    let mut depth = 0usize;
    let options = Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H3 => {
                in_heading = true;
                heading_text.clear();
            }
            Event::End(TagEnd::Heading(_)) if in_heading => {
                in_heading = false;
                title = heading_text.trim().to_string();
            }
            Event::Start(Tag::Item) => depth += 1,
            Event::End(TagEnd::Item) => {
                if let Some((checked, text, _)) = task.take_if(|(_, _, at)| *at == depth) {
                    let (checked, text) = decide(checked, &text, evidence);
                    record(&mut sections, &title, checked, text.trim());
                }
                depth -= 1;
            }
            Event::TaskListMarker(checked) => {
                // A nested task ends the text of its parent.
                if let Some((parent_checked, text, _)) = task.take() {
                    let (checked, text) = decide(parent_checked, &text, evidence);
                    record(&mut sections, &title, checked, text.trim());
                }
                task = Some((checked, String::new(), depth));
            }
            Event::Code(code) => {
                if in_heading {
                    heading_text.push_str(&code);
                } else if let Some((_, buffer, _)) = task.as_mut() {
                    buffer.push('`');
                    buffer.push_str(&code);
                    buffer.push('`');
                }
            }
            Event::Text(text) => {
                if in_heading {
                    heading_text.push_str(&text);
                } else if let Some((_, buffer, _)) = task.as_mut() {
                    buffer.push_str(&text);
                }
            }
            Event::InlineHtml(html) | Event::Html(html) => {
                if let (Some((_, buffer, _)), Some(key)) = (task.as_mut(), computed_key(&html)) {
                    // Kept in the text until the item ends, where it is decided.
                    buffer.push_str(&format!("{COMPUTED} {key} -->"));
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, buffer, _)) = task.as_mut() {
                    buffer.push(' ');
                }
            }
            _ => {}
        }
    }
    let checked = sections.iter().map(|s| s.checked).sum();
    let total = sections.iter().map(|s| s.total).sum();
    Checklist {
        sections,
        checked,
        total,
    }
}

fn computed_key(html: &str) -> Option<String> {
    let rest = html.trim().strip_prefix(COMPUTED)?;
    let key = rest.trim().strip_suffix("-->")?.trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// A computed item's state from `evidence` (its box ignored) and its text with the reason;
/// any other item as ticked.
fn decide(checked: bool, text: &str, evidence: &Evidence) -> (bool, String) {
    let Some(at) = text.find(COMPUTED) else {
        return (checked, text.to_string());
    };
    let key = computed_key(&text[at..]).unwrap_or_default();
    let own = text[..at].trim_end();
    match evidence.get(&key) {
        Some((done, why)) => (*done, format!("{own} (computed: {why})")),
        None => (
            false,
            format!("{own} (computed from records: none for `{key}`)"),
        ),
    }
}

fn record(sections: &mut Vec<Section>, title: &str, checked: bool, text: &str) {
    if sections.last().is_none_or(|s| s.title != title) {
        sections.push(Section {
            title: title.to_string(),
            checked: 0,
            total: 0,
            open: Vec::new(),
        });
    }
    let section = sections.last_mut().expect("pushed above");
    section.total += 1;
    if checked {
        section.checked += 1;
    } else {
        section.open.push(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_checked_of_total_per_section_and_lists_open_items() {
        let text = "# Readiness\n\nIntro.\n\n## Secrets\n\n- [x] Fill `JWT_SECRET`\n- [ ] Rotate the\n  admin token\n\n## Backups\n\n- [X] Daily snapshot\n  - [ ] Restore drill\n- plain bullet\n";
        let list = parse(text);
        assert_eq!((list.checked, list.total), (2, 4));
        assert_eq!(list.sections.len(), 2);
        assert_eq!(list.sections[0].title, "Secrets");
        assert_eq!(list.sections[0].open, ["Rotate the admin token"]);
        let code = parse("- [ ] Fill `JWT_SECRET`\n");
        assert_eq!(code.sections[0].open, ["Fill `JWT_SECRET`"]);
        assert_eq!(list.sections[1].title, "Backups");
        assert_eq!((list.sections[1].checked, list.sections[1].total), (1, 2));
        assert_eq!(list.sections[1].open, ["Restore drill"]);
        assert!(!list.complete());
    }

    #[test]
    fn computed_items_follow_the_evidence_not_their_box() {
        let text = "## Database\n\n- [x] Daily backups <!-- computed: backups -->\n\
                    - [ ] Restore tested <!-- computed: restore-drill -->\n- [x] By hand\n";
        let mut evidence = Evidence::new();
        evidence.insert("backups".into(), (false, "newest backup 30h old".into()));
        evidence.insert("restore-drill".into(), (true, "drill passed 2d ago".into()));
        let list = parse_with(text, &evidence);
        assert_eq!((list.checked, list.total), (2, 3));
        assert_eq!(
            list.sections[0].open,
            ["Daily backups (computed: newest backup 30h old)"]
        );
        let without = parse(text);
        assert_eq!(
            (without.checked, without.total),
            (1, 3),
            "a ticked box is not proof"
        );
        assert!(without.sections[0].open[0].contains("none for `backups`"));
    }

    #[test]
    fn an_empty_checklist_is_not_complete() {
        assert!(!parse("# Nothing\n").complete());
        assert!(parse("- [x] one\n").complete());
    }
}
