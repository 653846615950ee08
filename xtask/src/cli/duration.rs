//! Durations on the command line: `500ms`, `10s`, `1.5s`, `2m`, `1h`, and the old spelling
//! of a wait as bare seconds (`300`), accepted with a warning for one release.

use std::time::Duration;

use anyhow::{Context, bail};

/// The longest duration a flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration such as `500ms`, `10s`, `1.5s`, `2m` or `1h` (a number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let hint = "expected a number and a unit, e.g. 500ms, 10s, 2m, 1h";
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: {hint}"))?;
    let factor = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{text}` has no unit: {hint}")),
        other => return Err(format!("unknown unit `{other}` in `{text}`: {hint}")),
    };
    let duration = Duration::try_from_secs_f64(value * factor)
        .map_err(|_| format!("`{text}` is out of range: {hint}"))?;
    // Every wait, run and timeout a task takes is far shorter; longer is a typo, and deadlines
    // computed from it must not overflow.
    if duration > MAX_DURATION {
        return Err(format!("`{text}` is longer than 30 days: {hint}"));
    }
    Ok(duration)
}

/// Parses a wait like `300`, `90s`, `5m` or `1h` into seconds.
pub fn parse_wait(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    // A bare number is seconds, as flyctl's own --wait-timeout reads it: the old spelling,
    // accepted with a warning.
    let duration = if let Some(warning) = bare_seconds_warning(text) {
        warn_old_spelling(&warning);
        Duration::from_secs(
            text.parse()
                .with_context(|| format!("`{text}` is not a duration; use e.g. 90s or 5m"))?,
        )
    } else {
        parse_duration(text).map_err(anyhow::Error::msg)?
    };
    let seconds = duration.as_secs_f64().ceil() as u64;
    if seconds == 0 {
        bail!("a wait of 0 seconds cannot succeed; use e.g. 5m");
    }
    Ok(seconds)
}

/// The warning for a duration written the old way, as a bare number of seconds (`300`):
/// still accepted for one release, to be written with its unit (`300s`).
pub fn bare_seconds_warning(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.chars().all(|c| c.is_ascii_digit())).then(|| {
        format!(
            "warning: duration `{text}` without a unit is read as seconds; this spelling will \
             go away: write `{text}s` (durations are a number and a unit: 500ms, 30s, 5m, 1h)"
        )
    })
}

/// Prints the warning for an old flag or spelling on stderr (never on stdout, which `--json`
/// owns).
pub fn warn_old_spelling(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_seconds_are_the_old_spelling_and_units_are_the_new_one() {
        let warning = bare_seconds_warning("300").unwrap();
        assert!(warning.contains("write `300s`"), "{warning}");
        assert_eq!(bare_seconds_warning("300s"), None);
        assert_eq!(bare_seconds_warning("5m"), None);
        assert_eq!(bare_seconds_warning(""), None);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_explain_the_format() {
        for bad in [
            "",
            "10",
            "ten s",
            "10 parsecs",
            "-1s",
            "1e400s",
            "s",
            "4000000000000000h",
            "31d",
            "745h",
        ] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("e.g. 500ms"), "{bad}: {error}");
        }
    }

    #[test]
    fn waits_parse_with_units() {
        assert_eq!(parse_wait("300").unwrap(), 300);
        assert_eq!(parse_wait("90s").unwrap(), 90);
        assert_eq!(parse_wait("5m").unwrap(), 300);
        assert_eq!(parse_wait("1h").unwrap(), 3600);
        assert!(parse_wait("5 minutes").is_err());
        assert!(parse_wait("0").is_err());
        assert!(parse_wait("").is_err());
    }
}
