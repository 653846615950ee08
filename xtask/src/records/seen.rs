//! When this machine first saw each record. A record's `started_at` is another machine's
//! claim and its file time can be copied along with it (`cp -p`, `tar`, `rsync -t`) or set by
//! a clock that was wrong then: both may lie in the future, and then a stale PASS would stay
//! "latest" for ever. The first sighting is this machine's own observation, noted once in a
//! ledger beside the records (`runs/.first-seen`, not a record: its name starts with a dot
//! and does not end in `.json`) and never later than the moment it was noted.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};

/// The ledger's file name inside the runs directory.
pub const LEDGER: &str = ".first-seen";

/// The ledger of `dir`: file name → first sighting. A missing, unreadable or oversize ledger
/// reads as empty (records then rank by their file time, capped at now), and lines that do
/// not parse are ignored: it is a hint this machine keeps, never a reason to stop.
pub fn read(dir: &Path) -> BTreeMap<String, DateTime<Utc>> {
    let Ok(text) = crate::files::read_text_capped(&dir.join(LEDGER), crate::files::RECORD_LIMIT)
    else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|line| {
            let (name, at) = line.split_once('\t')?;
            let at = DateTime::parse_from_rfc3339(at).ok()?.to_utc();
            Some((name.to_string(), at))
        })
        .collect()
}

/// Notes sightings (file name, when) the ledger lacks, keeping the earliest of each. Written
/// to a temporary file and renamed over the ledger, so a reader never sees half of it.
pub fn note(
    dir: &Path,
    sightings: impl IntoIterator<Item = (String, DateTime<Utc>)>,
) -> anyhow::Result<()> {
    let mut ledger = read(dir);
    let before = ledger.clone();
    for (name, at) in sightings {
        let entry = ledger.entry(name).or_insert(at);
        *entry = (*entry).min(at);
    }
    if ledger == before {
        return Ok(());
    }
    let text: String = ledger
        .iter()
        .map(|(name, at)| {
            format!(
                "{name}\t{}\n",
                at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )
        })
        .collect();
    let path = dir.join(LEDGER);
    let partial = dir.join(format!("{LEDGER}.partial"));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))
}

/// When this machine first saw a record: the ledger's note, else the file time, and never
/// later than `now`.
pub fn first_seen(
    noted: Option<DateTime<Utc>>,
    file_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    noted.unwrap_or(file_time).min(file_time).min(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_keeps_the_earliest_sighting() {
        let dir = tempfile::tempdir().unwrap();
        let early = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let late = early + chrono::Duration::hours(1);
        note(dir.path(), [("a.json".to_string(), late)]).unwrap();
        note(dir.path(), [("a.json".to_string(), early)]).unwrap();
        note(dir.path(), [("a.json".to_string(), late)]).unwrap();
        assert_eq!(read(dir.path()).get("a.json"), Some(&early));
        // A file time in the future and no note: now.
        let future = late + chrono::Duration::days(365);
        assert_eq!(first_seen(None, future, late), late);
        assert_eq!(first_seen(Some(early), future, late), early);
    }
}
