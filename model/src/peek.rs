//! The cheap check ingest runs on every payload: is it an event, of which type, whose? It
//! reads only the fields that decide and skips the rest without building a JSON tree, and it
//! agrees with `ParsedEvent::parse` on every payload.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::event::{json_kind, resolve_type, Clues, EventType, TopicMap, TIME_FIELDS};
use crate::time;

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    clientid: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    reason_code: Option<IgnoredAny>,
    reason: Option<IgnoredAny>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    disconnected_at: Option<&'a RawValue>,
    #[serde(borrow)]
    connected_at: Option<&'a RawValue>,
}

/// A JSON string's value, or `None` for any other JSON value.
fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
}

/// The event type and client id of a payload, with the same errors as `ParsedEvent::parse`.
pub fn peek(payload: &[u8], topic: Option<&str>, topics: &TopicMap) -> Result<(EventType, String)> {
    // A derived struct also accepts a JSON array; only an object is an event.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| Error::NotJson(e.to_string()))?;
        return Err(Error::NotObject(json_kind(&value)));
    }
    let p: Peek<'_> = serde_json::from_slice(payload).map_err(|e| Error::NotJson(e.to_string()))?;
    let clientid = string(p.clientid).filter(|id| !id.is_empty()).ok_or(Error::MissingClientId)?;
    let event = string(p.event);
    let clues = Clues {
        event: event.as_deref(),
        reason_code: p.reason_code.is_some(),
        reason: p.reason.is_some(),
        disconnected_at: p.disconnected_at.is_some(),
        connected_at: p.connected_at.is_some(),
    };
    let event = resolve_type(&clues, topic, topics)?;
    for (field, raw) in TIME_FIELDS.into_iter().zip([p.timestamp, p.connected_at, p.disconnected_at]) {
        let value = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok());
        time::epoch_ms(field, value.as_ref())?;
    }
    Ok((event, clientid))
}
