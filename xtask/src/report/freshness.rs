//! How fresh a result is: measured at HEAD (and after the last deploy, for the network
//! tasks), how old, and the line each report section opens with.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::records::Saved;

/// Whether a result describes what is checked out (and deployed) now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Measured at HEAD (and after the last deploy, for the network tasks).
    Current,
    /// Measured something else: `HEAD is def456`, `before the last deploy at ...`.
    Stale(String),
}

/// Where a result came from, for the line under each section heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// When the run started, `YYYY-MM-DD HH:MM UTC`.
    pub started_at: String,
    /// `3 h ago`.
    pub age: String,
    /// Short commit measured, when known.
    pub commit: Option<String>,
    /// Whether the tree was dirty then.
    pub dirty: bool,
    /// Whether the result measured something other than HEAD (or the current release).
    pub stale: bool,
    /// `measured 3 h ago at commit abc123 (HEAD is def456: stale)`.
    pub note: String,
    /// The task's verdict label.
    pub verdict: String,
}

/// Formats a time for reports.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `45 s ago`, `12 min ago`, `3 h ago`, `2 d 4 h ago`.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    if secs < 0 {
        return "in the future (check the clock)".to_string();
    }
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} d {} h ago", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// The first 12 characters (records are data from disk: do not assume a hex hash).
fn short(commit: &str) -> &str {
    let end = commit
        .char_indices()
        .nth(12)
        .map_or(commit.len(), |(at, _)| at);
    &commit[..end]
}

/// Whether `record` measured HEAD and, for network tasks, the release deployed now
/// (`deployed_at`: start of the last deploy, when there is one).
pub fn freshness<T>(
    record: &Saved<T>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
) -> Freshness {
    // `head` and the measured identity are `<commit>` or, with uncommitted changes,
    // `<commit>+<tree>` (see `GitState::identity`).
    let measured = record.git.as_ref().map(|g| g.identity());
    let commit_of = |identity: &str| identity.split('+').next().unwrap_or_default().to_string();
    match (measured.as_deref(), head) {
        (_, None) => return Freshness::Stale("HEAD unknown, not a git checkout".into()),
        (None, Some(_)) => return Freshness::Stale("no commit recorded".into()),
        (Some(m), Some(h)) if commit_of(m) != commit_of(h) => {
            return Freshness::Stale(format!("HEAD is {}", short(&commit_of(h))));
        }
        (Some(m), Some(h)) if m != h => {
            return Freshness::Stale(
                "the working tree differs from the one measured (uncommitted changes)".into(),
            );
        }
        _ => {}
    }
    if let Some(deployed_at) = deployed_at
        && record.started_at < deployed_at
    {
        return Freshness::Stale(format!(
            "before the last deploy at {}",
            timestamp(deployed_at)
        ));
    }
    Freshness::Current
}

/// The provenance line of a section.
pub fn provenance<T>(
    record: &Saved<T>,
    now: DateTime<Utc>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
) -> Provenance {
    let commit = record.git.as_ref().map(|g| short(&g.commit).to_string());
    let dirty = record.git.as_ref().is_some_and(|g| g.dirty);
    let age = age(record.started_at, now);
    let at = match &commit {
        Some(c) if dirty => format!("at commit {c} (with uncommitted changes)"),
        Some(c) => format!("at commit {c}"),
        None => "at an unknown commit".to_string(),
    };
    let freshness = freshness(record, head, deployed_at);
    let note = match &freshness {
        Freshness::Current => format!("measured {age} {at} (HEAD)"),
        Freshness::Stale(why) => format!("measured {age} {at} ({why}: stale)"),
    };
    Provenance {
        started_at: timestamp(record.started_at),
        age,
        commit,
        dirty,
        stale: freshness != Freshness::Current,
        note,
        verdict: record.verdict.label().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(git: crate::repo::GitState) -> Saved<()> {
        crate::record::RunRecord {
            schema_version: crate::record::SCHEMA_VERSION,
            task: "smoke".into(),
            environment: "local".into(),
            git: Some(git),
            started_at: Utc::now(),
            duration_ms: 1,
            tool_version: "0".into(),
            verdict: crate::verdict::Verdict::Pass,
            result: (),
        }
    }

    #[test]
    fn uncommitted_changes_match_only_the_same_tree() {
        let dirty = |tree: &str| crate::repo::GitState {
            commit: "abc".into(),
            dirty: true,
            tree: Some(tree.into()),
        };
        let record = measured(dirty("t1"));
        assert_eq!(freshness(&record, Some("abc+t1"), None), Freshness::Current);
        let Freshness::Stale(why) = freshness(&record, Some("abc+t2"), None) else {
            panic!("another dirty tree must be stale");
        };
        assert!(why.contains("working tree differs"), "{why}");
        assert!(matches!(
            freshness(&record, Some("abc"), None),
            Freshness::Stale(_)
        ));
        let Freshness::Stale(why) = freshness(&record, Some("def+t1"), None) else {
            panic!("another commit must be stale");
        };
        assert!(why.contains("HEAD is def"), "{why}");
    }

    #[test]
    fn ages_read_like_a_person_wrote_them() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(age(now - chrono::Duration::seconds(5), now), "5 s ago");
        assert_eq!(age(now - chrono::Duration::minutes(12), now), "12 min ago");
        assert_eq!(age(now - chrono::Duration::hours(3), now), "3 h ago");
        assert_eq!(age(now - chrono::Duration::hours(52), now), "2 d 4 h ago");
    }
}
