//! `--since` and `--until`: a time window that every table of the session is filtered by.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::error::{Error, Result};

/// A half-open window `[since, until)`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Window {
    /// Reads `--since` and `--until`: a duration back from `now` (`24h`, `7d`, `90m`), a date
    /// (`2026-11-20`, midnight UTC) or a timestamp (`2026-11-20T08:00:00Z`, `2026-11-20 08:00`).
    pub fn parse(since: Option<&str>, until: Option<&str>, now: DateTime<Utc>) -> Result<Self> {
        let window = Window {
            since: since.map(|s| instant("--since", s, now)).transpose()?,
            until: until.map(|s| instant("--until", s, now)).transpose()?,
        };
        if let (Some(s), Some(u)) = (window.since, window.until) {
            if s >= u {
                return Err(Error::Usage(format!(
                    "--since ({}) is not before --until ({}); swap them or widen the window",
                    s.to_rfc3339(),
                    u.to_rfc3339()
                )));
            }
        }
        Ok(window)
    }

    /// The SQL condition on a table's time column `time` and on its Hive partition `date`, so
    /// whole days are skipped before any file is opened and row groups by their statistics.
    pub fn condition(&self, time: &str) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(since) = self.since {
            parts.push(format!("{time} >= '{}'", since.format("%Y-%m-%dT%H:%M:%S%.3fZ")));
            parts.push(format!("date >= '{}'", since.format("%Y-%m-%d")));
        }
        if let Some(until) = self.until {
            parts.push(format!("{time} < '{}'", until.format("%Y-%m-%dT%H:%M:%S%.3fZ")));
            parts.push(format!("date <= '{}'", until.format("%Y-%m-%d")));
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

fn instant(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = chrono::Duration::from_std(ago).map_err(|_| too_far(flag, text))?;
        return now.checked_sub_signed(ago).ok_or_else(|| too_far(flag, text));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(Error::Usage(format!(
        "{flag} `{text}` is not a time: give a duration back from now (24h, 7d, 90m), a date (2026-11-20) \
         or a UTC timestamp (2026-11-20T08:00:00Z)"
    )))
}

fn too_far(flag: &str, text: &str) -> Error {
    Error::Usage(format!("{flag} `{text}` reaches too far back; give a date instead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:30:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_durations_dates_and_timestamps() {
        let cases = [
            ("24h", "2026-11-21T10:30:00+00:00"),
            ("7d", "2026-11-15T10:30:00+00:00"),
            ("90m", "2026-11-22T09:00:00+00:00"),
            ("2026-11-20", "2026-11-20T00:00:00+00:00"),
            ("2026-11-20 08:15", "2026-11-20T08:15:00+00:00"),
            ("2026-11-20T08:00:00+02:00", "2026-11-20T06:00:00+00:00"),
        ];
        for (text, want) in cases {
            let w = Window::parse(Some(text), None, now()).unwrap();
            assert_eq!(w.since.unwrap().to_rfc3339(), want, "{text}");
        }
    }

    #[test]
    fn refuses_nonsense_and_reversed_windows() {
        let e = Window::parse(Some("yesterday"), None, now()).unwrap_err().to_string();
        assert!(e.contains("--since `yesterday` is not a time") && e.contains("24h"), "{e}");
        let e = Window::parse(Some("1h"), Some("2h"), now()).unwrap_err().to_string();
        assert!(e.contains("is not before --until"), "{e}");
    }

    #[test]
    fn condition_prunes_days() {
        let w = Window::parse(Some("2026-11-20T08:00:00Z"), Some("2026-11-21T03:00:00Z"), now()).unwrap();
        assert_eq!(
            w.condition("ts").unwrap(),
            "ts >= '2026-11-20T08:00:00.000Z' AND date >= '2026-11-20' \
             AND ts < '2026-11-21T03:00:00.000Z' AND date <= '2026-11-21'"
        );
        assert_eq!(Window::default().condition("minute"), None);
    }
}
