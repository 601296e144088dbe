//! Turning a broker's JSON payload into a client event: which of the three it is, whose it is.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::catalog::{self, ResolvedReason};
use crate::error::{Error, Result};
use crate::formats::{self, Broker, Initiator};
use crate::known::Known;
use crate::time::{self, Unit};

mod topics;

pub use topics::TopicMap;

/// The payload fields that hold a time, each checked by `time::epoch_ms`.
pub const TIME_FIELDS: [&str; 3] = ["timestamp", "connected_at", "disconnected_at"];

/// The three client lifecycle events connaudit records, ordered as their names are (the order
/// of the `events` table's first sort column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Connack,
    Connected,
    Disconnected,
}

impl EventType {
    pub const ALL: [EventType; 3] = [EventType::Connack, EventType::Connected, EventType::Disconnected];

    /// The name EMQX puts in the `event` field, which is also the Kafka `event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Connack => "client.connack",
            EventType::Connected => "client.connected",
            EventType::Disconnected => "client.disconnected",
        }
    }

    /// The topic a republish rule conventionally writes this event to.
    pub fn default_topic(self) -> &'static str {
        match self {
            EventType::Connack => "client_connack",
            EventType::Connected => "client_connected",
            EventType::Disconnected => "client_disconnected",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    /// Accepts `client.connack`, `client_connack` and `$events/client_connack` alike.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let name = s.strip_prefix("$events/").unwrap_or(s);
        // `_` stands for `.`, compared in place (no copy with the one replaced by the other).
        let same = |t: EventType| {
            let expected = t.as_str().as_bytes();
            expected.len() == name.len()
                && expected.iter().zip(name.bytes()).all(|(&e, n)| e == n || (e == b'.' && n == b'_'))
        };
        EventType::ALL.into_iter().find(|t| same(*t)).ok_or_else(|| {
            format!("unknown event type `{s}` (expected client.connack, client.connected or client.disconnected)")
        })
    }
}

/// A payload that passed validation: its type, its client, and every field it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub event: EventType,
    pub clientid: String,
    fields: Fields,
    /// The `TIME_FIELDS` in milliseconds with their unit, read once by `parse`.
    times: [Option<(i64, Unit)>; 3],
    /// The broker whose shape the payload has.
    pub broker: Broker,
    /// Who ended the connection, when the payload says it outright.
    stated_initiator: Option<Initiator>,
}

/// A payload's fields: for EMQX's shape only the ones connaudit reads (`known::KNOWN`, read
/// without a JSON tree), for the other shapes all of them, rewritten into EMQX's names.
#[derive(Debug, Clone, PartialEq)]
enum Fields {
    Known(Box<Known>),
    All(Map<String, Value>),
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Fields::Known(k) => k.get(name),
            Fields::All(m) => m.get(name),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        match self {
            Fields::Known(k) => k.take(name),
            Fields::All(m) => m.remove(name),
        }
    }
}

impl ParsedEvent {
    /// Parses one payload. The type comes from the `event` field, else from the topic, else
    /// from the fields present.
    pub fn parse(payload: &[u8], topic: Option<&str>, topics: &TopicMap) -> Result<ParsedEvent> {
        ParsedEvent::parse_as(payload, None, topic, topics)
    }

    /// Like `parse`, but a type resolved by an earlier stage (ingest's `event` header, from
    /// `--topic-event` for instance) wins over the payload's own clues.
    pub fn parse_as(
        payload: &[u8],
        declared: Option<EventType>,
        topic: Option<&str>,
        topics: &TopicMap,
    ) -> Result<ParsedEvent> {
        match Known::read(payload) {
            Some(known) => ParsedEvent::of(Fields::Known(Box::new(known)), Broker::Emqx, None, declared, topic, topics),
            None => ParsedEvent::parse_in_full(payload, declared, topic, topics),
        }
    }

    /// `parse_as` with every field kept, whatever the shape (what `parse_as` does for shapes
    /// other than EMQX's and for payloads it refuses).
    pub fn parse_in_full(
        payload: &[u8],
        declared: Option<EventType>,
        topic: Option<&str>,
        topics: &TopicMap,
    ) -> Result<ParsedEvent> {
        let value: Value = serde_json::from_slice(payload).map_err(|e| Error::NotJson(e.to_string()))?;
        let normalized = match value {
            Value::Object(map) => formats::normalize(map)?,
            other => return Err(Error::NotObject(json_kind(&other))),
        };
        let formats::Normalized { fields, broker, initiator } = normalized;
        ParsedEvent::of(Fields::All(fields), broker, initiator, declared, topic, topics)
    }

    fn of(
        mut fields: Fields,
        broker: Broker,
        stated_initiator: Option<Initiator>,
        declared: Option<EventType>,
        topic: Option<&str>,
        topics: &TopicMap,
    ) -> Result<ParsedEvent> {
        // Moved out: it is the event's `clientid`, not read as a field again.
        let clientid = match fields.take("clientid") {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => return Err(Error::MissingClientId),
        };
        let event = match declared {
            Some(event) => event,
            None => resolve_type(&Clues::of(&fields), topic, topics)?,
        };
        let mut times = [None; 3];
        for (slot, field) in times.iter_mut().zip(TIME_FIELDS) {
            *slot = time::epoch_ms(field, fields.get(field))?;
        }
        Ok(ParsedEvent { event, clientid, fields, times, broker, stated_initiator })
    }

    /// The event as `format`'s (its topic's `--source-format`): TDMQ for EMQX's shape, the
    /// broker itself for its own; a payload of another broker's shape is refused.
    pub fn from_source(mut self, format: Broker) -> Result<ParsedEvent> {
        if !format.accepts(self.broker) {
            return Err(Error::WrongFormat(format!(
                "the topic carries {format} events (--source-format) but the payload has {}'s shape",
                self.broker
            )));
        }
        self.broker = format;
        Ok(self)
    }

    /// One of `TIME_FIELDS` in milliseconds with the unit it was written in.
    pub fn time_field(&self, name: &str) -> Option<(i64, Unit)> {
        TIME_FIELDS.iter().position(|f| *f == name).and_then(|i| self.times[i])
    }

    /// A field's value as the payload (in EMQX's names) has it. For EMQX's shape only the
    /// fields of `known::KNOWN` are kept; `clientid` is [`ParsedEvent::clientid`].
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// A string field moved out of the event; `None`, and the field stays, if it is absent or
    /// not a string.
    pub fn take_str(&mut self, name: &str) -> Option<String> {
        if !self.fields.get(name).is_some_and(Value::is_string) {
            return None;
        }
        match self.fields.take(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// An integer field; brokers sometimes send numbers as strings.
    pub fn i64_field(&self, name: &str) -> Option<i64> {
        match self.fields.get(name)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Who ended the connection, for a disconnect: what the payload says, else what its
    /// reason implies (`unknown` without a reason).
    /// What the payload says about the client beyond the columns, as one JSON object of
    /// strings with sorted keys (None when nothing): EMQX's `client_attrs`, the MQTT 5
    /// User-Properties of the CONNECT (`conn_props`; a name `client_attrs` has is not taken
    /// again), and AWS IoT Core's `principalIdentifier` as `principal`.
    pub fn attributes(&self) -> Option<String> {
        let mut attrs = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: &Value| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                _ => return,
            };
            if !k.is_empty() {
                attrs.entry(k.to_string()).or_insert(text);
            }
        };
        if let Some(Value::Object(m)) = self.field("client_attrs") {
            m.iter().for_each(|(k, v)| put(k, v));
        }
        match self.field("conn_props").and_then(|p| p.get("User-Property")) {
            Some(Value::Object(m)) => m.iter().for_each(|(k, v)| put(k, v)),
            // Also seen as a list of pairs, or of {"key"|"name", "value"} objects (EMQX adds
            // `User-Property-Pairs` in that form beside the map).
            Some(Value::Array(pairs)) => {
                for pair in pairs {
                    match pair {
                        Value::Array(kv) if kv.len() == 2 => {
                            if let Some(k) = kv[0].as_str() {
                                put(k, &kv[1]);
                            }
                        }
                        Value::Object(o) => {
                            let k = o.get("key").or_else(|| o.get("name")).and_then(Value::as_str);
                            if let (Some(k), Some(v)) = (k, o.get("value")) {
                                put(k, v);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if self.broker == Broker::AwsIot {
            if let Some(v) = self.field("principalIdentifier") {
                put("principal", v);
            }
        }
        (!attrs.is_empty()).then(|| serde_json::to_string(&attrs).expect("strings serialize"))
    }

    /// The broker's own name for the connection, where it gives one that a connect and its
    /// disconnect share: AWS IoT Core's `sessionIdentifier`.
    pub fn session_id(&self) -> Option<&str> {
        match self.broker {
            Broker::AwsIot => self.str_field("sessionIdentifier").filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    pub fn initiator(&self) -> Option<Initiator> {
        self.initiator_of(self.reason().as_ref())
    }

    /// [`ParsedEvent::initiator`] given the event's [`ParsedEvent::reason`], resolved once.
    pub fn initiator_of(&self, reason: Option<&ResolvedReason>) -> Option<Initiator> {
        if self.event != EventType::Disconnected {
            return None;
        }
        let from_reason = reason.map_or(Initiator::Unknown, |r| formats::initiator(r.category, &r.name));
        Some(self.stated_initiator.unwrap_or(from_reason))
    }

    /// The CONNACK or disconnect reason, resolved through the catalog.
    pub fn reason(&self) -> Option<ResolvedReason> {
        let proto_ver = self.i64_field("proto_ver").and_then(|v| u8::try_from(v).ok());
        match self.event {
            EventType::Connack => Some(match self.fields.get("reason_code").filter(|v| !v.is_null()) {
                Some(code) => catalog::resolve_connack(code, proto_ver),
                None => catalog::connack_without_code(),
            }),
            EventType::Disconnected => self.fields.get("reason").map(catalog::resolve_disconnect),
            EventType::Connected => None,
        }
    }
}

/// What a payload says about its own type: its `event` field and which telling fields it has
/// (present and not null).
pub(crate) struct Clues<'a> {
    pub event: Option<&'a str>,
    pub reason_code: bool,
    pub reason: bool,
    pub disconnected_at: bool,
    pub connected_at: bool,
}

impl<'a> Clues<'a> {
    fn of(fields: &'a Fields) -> Self {
        let has = |k: &str| fields.get(k).is_some_and(|v| !v.is_null());
        Clues {
            event: fields.get("event").and_then(Value::as_str),
            reason_code: has("reason_code"),
            reason: has("reason"),
            disconnected_at: has("disconnected_at"),
            connected_at: has("connected_at"),
        }
    }
}

pub(crate) fn resolve_type(clues: &Clues<'_>, topic: Option<&str>, topics: &TopicMap) -> Result<EventType> {
    if let Some(declared) = clues.event {
        return declared
            .parse()
            .map_err(|_| Error::UnknownEventType(format!("`event` is `{declared}`, not a client lifecycle event")));
    }
    if let Some(event) = topic.and_then(|t| topics.lookup(t)) {
        return Ok(event);
    }
    if clues.reason_code {
        Ok(EventType::Connack)
    } else if clues.disconnected_at || clues.reason {
        Ok(EventType::Disconnected)
    } else if clues.connected_at {
        Ok(EventType::Connected)
    } else {
        Err(Error::UnknownEventType(format!(
            "no `event` field, topic `{}` is not mapped, and the fields match no event",
            topic.unwrap_or("")
        )))
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
