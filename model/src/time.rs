//! Event timestamps: milliseconds since the Unix epoch, as EMQX writes them. Other units are
//! recognised by their size and converted, RFC 3339 text is read; a value that is no time
//! between 2000 and 2100 is refused, so nothing lands in 1970 or in the year 50,000.

use serde_json::Value;

use crate::error::{Error, Result};

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in milliseconds: the plausible range.
pub const MIN_MS: i64 = 946_684_800_000;
pub const MAX_MS: i64 = 4_102_444_800_000;

/// The unit a timestamp was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
    /// RFC 3339 text, e.g. `2026-11-20T08:00:00.123Z`.
    Rfc3339,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Millis => "milliseconds",
            Unit::Micros => "microseconds",
            Unit::Nanos => "nanoseconds",
            Unit::Rfc3339 => "rfc3339",
        }
    }
}

/// A timestamp field in milliseconds with the unit it was written in; `Ok(None)` when the field
/// is absent or null. A number, or a string holding one (brokers send both). The ranges of the
/// units do not overlap, so the conversion is never a guess.
pub fn epoch_ms(field: &str, value: Option<&Value>) -> Result<Option<(i64, Unit)>> {
    let bad = |why: &str| Error::BadTimestamp(format!("`{field}` is {}: {why}", short(value)));
    let number = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let t = chrono::DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|_| bad("neither a number nor an RFC 3339 time"))?;
                let ms = t.timestamp_millis();
                if !(MIN_MS..MAX_MS).contains(&ms) {
                    return Err(bad("not between 2000 and 2100"));
                }
                return Ok(Some((ms, Unit::Rfc3339)));
            }
        },
        Some(_) => None,
    };
    let v = number.filter(|v| v.is_finite()).ok_or_else(|| bad("not a number"))?;
    let within = |scale: f64| v >= MIN_MS as f64 * scale && v < MAX_MS as f64 * scale;
    let (ms, unit) = if within(1.0) {
        (v, Unit::Millis)
    } else if within(0.001) {
        (v * 1000.0, Unit::Seconds)
    } else if within(1000.0) {
        (v / 1000.0, Unit::Micros)
    } else if within(1_000_000.0) {
        (v / 1_000_000.0, Unit::Nanos)
    } else {
        return Err(bad(
            "not a time between 2000 and 2100 in milliseconds (nor seconds, microseconds or nanoseconds) since 1970",
        ));
    };
    Ok(Some((ms.floor() as i64, unit)))
}

fn short(value: Option<&Value>) -> String {
    let text = value.map(Value::to_string).unwrap_or_default();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// Milliseconds since the Unix epoch, now (0 on a clock before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn units_are_told_apart_by_size() {
        let ms = |v: Value| epoch_ms("timestamp", Some(&v)).unwrap();
        assert_eq!(ms(json!(1_700_000_000_123i64)), Some((1_700_000_000_123, Unit::Millis)));
        assert_eq!(ms(json!("1700000000123")), Some((1_700_000_000_123, Unit::Millis)));
        assert_eq!(ms(json!(1_700_000_000)), Some((1_700_000_000_000, Unit::Seconds)));
        assert_eq!(ms(json!(1_700_000_000.5)), Some((1_700_000_000_500, Unit::Seconds)));
        assert_eq!(ms(json!(1_700_000_000_123_456i64)), Some((1_700_000_000_123, Unit::Micros)));
        assert_eq!(ms(json!(1_700_000_000_123_456_789i64)), Some((1_700_000_000_123, Unit::Nanos)));
        assert_eq!(ms(json!("2023-11-14T22:13:20.123Z")), Some((1_700_000_000_123, Unit::Rfc3339)));
        assert_eq!(ms(json!("2023-11-15T00:13:20.123+02:00")), Some((1_700_000_000_123, Unit::Rfc3339)));
        assert_eq!(ms(json!(null)), None);
        assert_eq!(epoch_ms("timestamp", None).unwrap(), None);
    }

    #[test]
    fn implausible_values_are_refused_with_the_field_named() {
        for v in
            [json!(0), json!(-5), json!(12345), json!(99_999_999_999_999i64), json!("soon"), json!(true), json!([1])]
        {
            let err = epoch_ms("connected_at", Some(&v)).unwrap_err();
            assert_eq!(err.kind(), "bad_timestamp");
            assert!(err.to_string().contains("`connected_at`"), "{err}");
        }
    }
}
