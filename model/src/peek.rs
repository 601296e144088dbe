//! The cheap check ingest runs on every payload: is it an event, of which type, whose? It
//! keeps only the fields that decide and checks the rest without building a JSON tree (about
//! 0.45x the time of a full parse), and it agrees with `ParsedEvent::parse` on every payload:
//! a key given twice counts with its last value, and a payload a `serde_json::Value` cannot
//! hold (a number out of range, invalid UTF-8 or escapes, nesting past serde_json's limit) is
//! refused by both. `model/tests/it/mutations.rs` checks this on seeded mutations. A payload
//! without `clientid` (another broker's shape, see `formats`) is read in full.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::checked::Checked;
use crate::error::{Error, Result};
use crate::event::{json_kind, resolve_type, Clues, EventType, TopicMap, TIME_FIELDS};
use crate::time;

/// The fields that decide, each the last of its name in the payload: a key given twice keeps
/// its last value, as `serde_json::Value` (and so `ParsedEvent::parse`) keeps it. Each is read
/// once, in place: no raw slice kept and read again.
#[derive(Default)]
struct Peek<'a> {
    clientid: Leaf<'a>,
    event: Leaf<'a>,
    reason_code: bool,
    reason: bool,
    /// `TIME_FIELDS`' values: `timestamp`, `connected_at`, `disconnected_at` (`null` is none).
    times: [Option<Value>; 3],
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Clientid,
    Event,
    ReasonCode,
    Reason,
    Timestamp,
    ConnectedAt,
    DisconnectedAt,
    #[serde(other)]
    Other,
}

/// A value as the decision needs it: `null` (as good as absent, as in `Clues::of`), a string,
/// or anything else (read to its end and checked as `Checked` checks it).
#[derive(Default)]
enum Leaf<'a> {
    #[default]
    Null,
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Leaf<'a> {
    fn present(&self) -> bool {
        !matches!(self, Leaf::Null)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Leaf::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Leaf<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(LeafVisitor)
    }
}

struct LeafVisitor;

impl<'de> serde::de::Visitor<'de> for LeafVisitor {
    type Value = Leaf<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Null)
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Other)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Other)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Other)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Leaf<'de>, E> {
        Ok(Leaf::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Leaf<'de>, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Leaf::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Leaf<'de>, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Leaf::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Peek<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Peek<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<Peek<'de>, M::Error> {
                let mut p = Peek::default();
                while let Some(field) = map.next_key::<Field>()? {
                    // A time is read as `ParsedEvent` reads it, a `Value`; `null` is none.
                    let mut time = |i: usize, v: Value| p.times[i] = (!v.is_null()).then_some(v);
                    match field {
                        Field::Clientid => p.clientid = map.next_value()?,
                        Field::Event => p.event = map.next_value()?,
                        Field::ReasonCode => p.reason_code = map.next_value::<Leaf<'de>>()?.present(),
                        Field::Reason => p.reason = map.next_value::<Leaf<'de>>()?.present(),
                        Field::Timestamp => time(0, map.next_value()?),
                        Field::ConnectedAt => time(1, map.next_value()?),
                        Field::DisconnectedAt => time(2, map.next_value()?),
                        Field::Other => {
                            map.next_value::<Checked>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The event type and client id of a payload, with the same errors as `ParsedEvent::parse`.
pub fn peek(payload: &[u8], topic: Option<&str>, topics: &TopicMap) -> Result<(EventType, String)> {
    // A derived struct also accepts a JSON array; only an object is an event.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| Error::NotJson(e.to_string()))?;
        return Err(Error::NotObject(json_kind(&value)));
    }
    // One UTF-8 check of the whole payload, then no string is checked again on its own. A
    // payload that fails it fails `ParsedEvent::parse` too; that read gives the error.
    let Ok(text) = std::str::from_utf8(payload) else {
        let why =
            serde_json::from_slice::<Value>(payload).err().map_or_else(|| "invalid UTF-8".into(), |e| e.to_string());
        return Err(Error::NotJson(why));
    };
    let p: Peek<'_> = serde_json::from_str(text).map_err(|e| Error::NotJson(e.to_string()))?;
    if !p.clientid.present() {
        // No EMQX `clientid`: another broker's shape (or no event at all), read in full.
        let e = crate::ParsedEvent::parse(payload, topic, topics)?;
        return Ok((e.event, e.clientid));
    }
    let clientid = p.clientid.as_str().filter(|id| !id.is_empty()).ok_or(Error::MissingClientId)?;
    let clues = Clues {
        event: p.event.as_str(),
        reason_code: p.reason_code,
        reason: p.reason,
        disconnected_at: p.times[2].is_some(),
        connected_at: p.times[1].is_some(),
    };
    let event = resolve_type(&clues, topic, topics)?;
    for (field, value) in TIME_FIELDS.into_iter().zip(&p.times) {
        time::epoch_ms(field, value.as_ref())?;
    }
    Ok((event, clientid.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nesting past serde_json's limit in a deciding field or a skipped one is refused as a
    /// full parse refuses it, without exhausting the stack.
    #[test]
    fn deep_nesting_in_any_field_is_refused_not_a_crash() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        for field in ["clientid", "event", "reason", "timestamp", "other"] {
            let payload = format!(r#"{{"clientid":"a","{field}":{deep}}}"#);
            let got = peek(payload.as_bytes(), None, &TopicMap::default());
            assert!(matches!(got, Err(Error::NotJson(_))), "{field}: {got:?}");
        }
    }
}
