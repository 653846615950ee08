//! How fresh a result is: measured at HEAD (and after the last deploy, for the network
//! tasks), how old, and the line each report section opens with.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::records::Saved;
use crate::repo::INPUTS_PREFIX;

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
    /// What it was measured against: `against release v12 (image ...)` or
    /// `against deployable inputs tree 1a2b3c4d5e6f`.
    pub against: String,
    /// `measured 3 h ago at commit abc123, against ... (HEAD is def456: stale)`.
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

/// Whether `record` measured what is checked out (the deployable inputs' tree, or for older
/// records the commit) and, for network tasks, the release serving now (`deployed_at`: since
/// when it has been serving, when there is a deploy).
pub fn freshness<T>(
    record: &Saved<T>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
) -> Freshness {
    // `head` and the measured identity are `inputs:<tree>`, or for records written before
    // the inputs were tracked `<commit>` / `<commit>+<tree>` (see `GitState::identity`).
    // A network result of a deployed environment measured a release, not the checkout: it
    // stays fresh while that release serves, whatever was committed since (the deploy's own
    // result goes stale with the inputs, which keeps the verdict from GO).
    if let Some(deployed_at) = deployed_at {
        if record.started_at < deployed_at {
            return Freshness::Stale(format!(
                "another release has served since: the current one since {}",
                timestamp(deployed_at)
            ));
        }
        return Freshness::Current;
    }
    let measured = record.git.as_ref().map(|g| g.identity());
    let commit_of = |identity: &str| identity.split('+').next().unwrap_or_default().to_string();
    let by_inputs = |identity: &str| identity.starts_with(INPUTS_PREFIX);
    match (measured.as_deref(), head) {
        (_, None) => return Freshness::Stale("HEAD unknown, not a git checkout".into()),
        (None, Some(_)) => return Freshness::Stale("no commit recorded".into()),
        (Some(m), Some(h)) if m != h && by_inputs(h) && !by_inputs(m) => {
            return Freshness::Stale(
                "recorded before the deployable inputs were tracked".to_string(),
            );
        }
        (Some(m), Some(h)) if m != h && by_inputs(m) => {
            return Freshness::Stale(format!(
                "deployable inputs changed: their tree is now {}",
                short(h.trim_start_matches(INPUTS_PREFIX))
            ));
        }
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
    Freshness::Current
}

/// What a result was measured against, for its section: the serving release for network
/// results of a deployed environment (`release`), else the deployable inputs' tree.
fn measured_against<T>(record: &Saved<T>, release: Option<&str>) -> String {
    if let Some(release) = release {
        return format!("against {release}");
    }
    match record.git.as_ref().and_then(|g| g.inputs.as_deref()) {
        Some(tree) => format!("against deployable inputs tree {}", short(tree)),
        None => "against the whole commit (no inputs tree recorded)".to_string(),
    }
}

/// The provenance line of a section. `release`: for network results of a deployed
/// environment, the release they measured (`release v12, image ...`).
pub fn provenance<T>(
    record: &Saved<T>,
    now: DateTime<Utc>,
    head: Option<&str>,
    deployed_at: Option<DateTime<Utc>>,
    release: Option<&str>,
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
    let against = match (release, deployed_at) {
        // Measured before the serving release took over: it measured an earlier one.
        (Some(release), Some(since)) if record.started_at < since => {
            format!("against an earlier release ({release} serves now)")
        }
        _ => measured_against(record, release),
    };
    let note = match &freshness {
        Freshness::Current => format!("measured {age} {at}, {against} (current)"),
        Freshness::Stale(why) => format!("measured {age} {at}, {against} ({why}: stale)"),
    };
    Provenance {
        started_at: timestamp(record.started_at),
        age,
        commit,
        dirty,
        stale: freshness != Freshness::Current,
        against,
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
            inputs: None,
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
