//! iCalendar (RFC 5545, https://www.rfc-editor.org/rfc/rfc5545) in the two shapes the
//! service needs: writing a cabin's busy dates as all-day events, and reading the busy date
//! ranges out of another channel's feed. Pure functions; no I/O.
//!
//! Reading is deliberately narrow: a feed is accepted only when every event in it can be
//! read, so a half-understood feed never replaces good blocks with fewer ones.

use chrono::{DateTime, NaiveDate, Utc};

/// One busy range of a cabin, half-open `[start, end)` in nights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BusyRange {
    /// First night.
    pub start: NaiveDate,
    /// Day after the last night (iCal's exclusive `DTEND;VALUE=DATE`).
    pub end: NaiveDate,
}

/// One event of the export: a stable id (no guest data) and its nights.
#[derive(Debug, Clone)]
pub struct ExportEvent {
    /// Unique and stable across exports of this event (RFC 5545 §3.8.4.7).
    pub uid: String,
    /// Its nights.
    pub range: BusyRange,
}

/// The most events a feed may hold; more is not a cabin's calendar.
pub const MAX_EVENTS: usize = 10_000;

/// RFC 5545 §3.1: content lines are at most 75 octets, excluding the CRLF.
const MAX_LINE_OCTETS: usize = 75;

/// The export: a VCALENDAR of all-day, opaque VEVENTs named only "Reserved", with CRLF line
/// ends and lines folded at 75 octets (never inside a UTF-8 character).
pub fn render(calendar_name: &str, events: &[ExportEvent], stamp: DateTime<Utc>) -> String {
    let stamp = stamp.format("%Y%m%dT%H%M%SZ").to_string();
    let mut out = String::new();
    let mut line = |text: &str| fold_into(&mut out, text);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//sist-cabanas//calendar export//EN");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!("X-WR-CALNAME:{}", escape_text(calendar_name)));
    for event in events {
        line("BEGIN:VEVENT");
        line(&format!("UID:{}", escape_text(&event.uid)));
        line(&format!("DTSTAMP:{stamp}"));
        line(&format!(
            "DTSTART;VALUE=DATE:{}",
            event.range.start.format("%Y%m%d")
        ));
        line(&format!(
            "DTEND;VALUE=DATE:{}",
            event.range.end.format("%Y%m%d")
        ));
        line("SUMMARY:Reserved");
        line("TRANSP:OPAQUE");
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// Appends `text` as one content line, folded: a CRLF and a space before every 75th octet.
fn fold_into(out: &mut String, text: &str) {
    let mut used = 0;
    for c in text.chars() {
        let width = c.len_utf8();
        // A continuation line starts with a space, which counts toward its 75 octets.
        if used + width > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += width;
    }
    out.push_str("\r\n");
}

/// RFC 5545 §3.3.11 TEXT escaping.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Why a feed was refused, in words safe to show an admin (never the feed's URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct FeedError {
    /// A word for the metric label: `malformed`, `too_large`, `http_status`, `unreachable`
    /// or `refused_url`.
    pub reason: &'static str,
    /// The sentence shown in the admin API.
    pub detail: String,
}

impl FeedError {
    /// A refusal for `reason`, explained by `detail`.
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

fn refuse(why: impl Into<String>) -> FeedError {
    FeedError::new("malformed", why)
}

/// The busy ranges of a feed: its VEVENTs minus cancelled and transparent (free) ones,
/// ending after `today`, merged where they overlap or touch, in order.
pub fn busy_ranges(feed: &str, today: NaiveDate) -> Result<Vec<BusyRange>, FeedError> {
    let lines = unfold(feed);
    if lines.first().map(|l| l.trim()) != Some("BEGIN:VCALENDAR") {
        return Err(refuse(
            "not an iCalendar feed: it does not start with BEGIN:VCALENDAR",
        ));
    }
    if !lines.iter().any(|l| l.trim() == "END:VCALENDAR") {
        return Err(refuse("the feed is cut short: END:VCALENDAR is missing"));
    }
    let mut ranges = Vec::new();
    let mut event: Option<EventFields> = None;
    let mut seen = 0usize;
    for line in &lines {
        let (name, params, value) = split_line(line);
        match (name.as_str(), &mut event) {
            ("BEGIN", None) if value.eq_ignore_ascii_case("VEVENT") => {
                seen += 1;
                if seen > MAX_EVENTS {
                    return Err(refuse(format!(
                        "the feed has more than {MAX_EVENTS} events"
                    )));
                }
                event = Some(EventFields::default());
            }
            ("END", Some(fields)) if value.eq_ignore_ascii_case("VEVENT") => {
                if let Some(range) = fields.range(seen)? {
                    ranges.push(range);
                }
                event = None;
            }
            ("DTSTART", Some(fields)) => fields.start = Some(parse_date(&value, &params, seen)?),
            ("DTEND", Some(fields)) => fields.end = Some(parse_date(&value, &params, seen)?),
            ("STATUS", Some(fields)) => fields.cancelled = value.eq_ignore_ascii_case("CANCELLED"),
            ("TRANSP", Some(fields)) => {
                fields.transparent = value.eq_ignore_ascii_case("TRANSPARENT");
            }
            _ => {}
        }
    }
    if event.is_some() {
        return Err(refuse(format!("event {seen} has no END:VEVENT")));
    }
    ranges.retain(|r| r.end > today);
    Ok(merge(ranges))
}

#[derive(Default)]
struct EventFields {
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    cancelled: bool,
    transparent: bool,
}

impl EventFields {
    fn range(&self, number: usize) -> Result<Option<BusyRange>, FeedError> {
        let start = self
            .start
            .ok_or_else(|| refuse(format!("event {number} has no DTSTART")))?;
        // §3.6.1: an all-day event without DTEND lasts one day; a timed one ends on the day
        // it starts, which still takes that night.
        let end = self
            .end
            .filter(|end| *end > start)
            .unwrap_or_else(|| start.succ_opt().unwrap_or(start));
        if self.cancelled || self.transparent || end <= start {
            return Ok(None);
        }
        Ok(Some(BusyRange { start, end }))
    }
}

/// The date of a DTSTART/DTEND: `VALUE=DATE` (`20270105`) or a DATE-TIME
/// (`20270105T150000Z`, floating or with TZID), whose calendar day is taken as written.
fn parse_date(value: &str, params: &str, number: usize) -> Result<NaiveDate, FeedError> {
    let day = value.get(..8).filter(|_| {
        value.len() == 8 || (value.as_bytes().get(8) == Some(&b'T') && !params.contains("DATE;"))
    });
    day.and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .ok_or_else(|| {
            let shown: String = value.chars().take(40).collect();
            refuse(format!(
                "event {number}: {shown:?} is not an iCalendar DATE or DATE-TIME"
            ))
        })
}

/// Undoes RFC 5545 §3.1 folding: a line break followed by a space or tab continues the line.
fn unfold(feed: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in feed.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ if raw.is_empty() => {}
            _ => lines.push(raw.to_owned()),
        }
    }
    lines
}

/// `NAME;PARAMS:VALUE` → (upper-case name, params, value); a `:` inside a quoted
/// parameter value does not end the parameters.
fn split_line(line: &str) -> (String, String, String) {
    let mut quoted = false;
    let colon = line.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        ':' if !quoted => Some(i),
        _ => None,
    });
    let (head, value) = match colon {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let (name, params) = head.split_once(';').unwrap_or((head, ""));
    (
        name.trim().to_ascii_uppercase(),
        params.to_ascii_uppercase() + ";",
        value.trim().to_owned(),
    )
}

/// Sorted ranges with overlapping or touching ones joined.
fn merge(mut ranges: Vec<BusyRange>) -> Vec<BusyRange> {
    ranges.sort();
    let mut merged: Vec<BusyRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_a_character() {
        let name = "Cabaña ".repeat(20);
        let folded = render(&name, &[], Utc::now());
        for line in folded.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        let unfolded = folded.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("X-WR-CALNAME:{}", name.trim_end())));
    }

    #[test]
    fn events_are_read_merged_and_filtered() {
        let feed = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
            BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270110\r\nDTEND;VALUE=DATE:20270112\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270111\r\nDTEND;VALUE=DATE:20270114\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nDTSTART;TZID=\"America/Argentina:x\":20270120T150000\r\n\
            DTEND:20270122T110000Z\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270201\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200101\r\nDTEND;VALUE=DATE:20200102\r\nEND:VEVENT\r\n\
            END:VCALENDAR\r\n";
        let ranges = busy_ranges(feed, day("2026-12-01")).unwrap();
        assert_eq!(
            ranges,
            vec![
                BusyRange {
                    start: day("2027-01-10"),
                    end: day("2027-01-14")
                },
                BusyRange {
                    start: day("2027-01-20"),
                    end: day("2027-01-22")
                },
            ]
        );
    }

    #[test]
    fn malformed_feeds_are_refused_with_a_reason() {
        let today = day("2026-12-01");
        let not_ical = busy_ranges("<html>hello</html>", today).unwrap_err();
        assert!(not_ical.detail.contains("BEGIN:VCALENDAR"), "{not_ical}");
        let bad_date =
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:tomorrow\nEND:VEVENT\nEND:VCALENDAR\n";
        let err = busy_ranges(bad_date, today).unwrap_err();
        assert!(
            err.detail.contains("event 1") && err.detail.contains("tomorrow"),
            "{err}"
        );
        let cut = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20270101\n";
        assert!(
            busy_ranges(cut, today)
                .unwrap_err()
                .detail
                .contains("cut short")
        );
    }
}
