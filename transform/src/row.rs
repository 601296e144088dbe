//! One Kafka record becomes one normalized row of the `events` table.

use std::borrow::Cow;
use std::sync::Arc;

use connaudit_model::{ip_text, peer_address, EventType, ParsedEvent, TopicMap, Unit};
use connaudit_warehouse::fingerprint::{fingerprint, Value as Cell, COLUMNS};
use serde_json::Value;

use crate::regions::RegionMap;

/// A normalized event; the `events` table has one column per field.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub event: EventType,
    /// Milliseconds since the Unix epoch, UTC.
    pub ts: i64,
    pub clientid: String,
    pub username: Option<String>,
    pub peer_ip: Option<String>,
    pub peer_port: Option<i32>,
    pub node: Option<String>,
    /// Shared with the other rows of the region ([`RegionMap::resolve`]).
    pub region: Arc<str>,
    pub proto_name: Option<String>,
    pub proto_ver: Option<i32>,
    /// The catalog's name (borrowed), or an unknown reason's own text.
    pub reason: Option<Cow<'static, str>>,
    pub reason_code: Option<i32>,
    pub category: Option<&'static str>,
    pub is_failure: bool,
    pub keepalive: Option<i32>,
    pub clean_start: Option<bool>,
    pub expiry_interval: Option<i64>,
    pub connected_at: Option<i64>,
    pub disconnected_at: Option<i64>,
    pub session_ms: Option<i64>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// What a redelivered copy of the record shares with it: the fingerprint of its columns
    /// ([`connaudit_warehouse::fingerprint`], computed again from the table after a restart).
    /// None for a payload without a time of its own (VerneMQ's webhook bodies): two such events
    /// of a client are the same content, so content cannot tell a copy from the next event.
    pub fingerprint: Option<i64>,
    /// The broker whose shape the payload has (`emqx`, `aws-iot`, ...).
    pub broker: &'static str,
    /// Who ended the connection (disconnects only): client, server, network, admin, unknown.
    pub initiator: Option<&'static str>,
    /// What else the payload says about the client: a JSON object of strings, sorted keys
    /// ([`ParsedEvent::attributes`]).
    pub attributes: Option<String>,
    /// The broker's name for the connection ([`ParsedEvent::session_id`]).
    pub session_id: Option<String>,
}

/// Where a record sits in Kafka and what ingest's headers said about it.
#[derive(Debug, Clone, Default)]
pub struct Origin<'a> {
    pub partition: i32,
    pub offset: i64,
    /// The MQTT topic the event came on (ingest's `mqtt_topic` header).
    pub mqtt_topic: Option<&'a str>,
    /// The type ingest resolved (its `event` header); it wins over the payload's clues.
    pub event: Option<EventType>,
    /// Ingest's `received_at` header, else the Kafka record's timestamp.
    pub fallback_ts: Option<i64>,
    /// The broker the topic carries events of (ingest's `source_format` header).
    pub source_format: Option<&'a str>,
}

impl Row {
    /// Parses a payload; the error is the reason the record goes to the dead-letter topic.
    pub fn parse(
        payload: &[u8],
        origin: &Origin<'_>,
        topics: &TopicMap,
        regions: &RegionMap,
    ) -> Result<Row, connaudit_model::Error> {
        let mut ev = ParsedEvent::parse_as(payload, origin.event, origin.mqtt_topic, topics)?;
        if let Some(format) = origin.source_format {
            ev = ev.from_source(format.parse().map_err(connaudit_model::Error::WrongFormat)?)?;
        }
        let int = |ev: &ParsedEvent, k: &str| ev.i64_field(k);
        let int32 = |ev: &ParsedEvent, k: &str| int(ev, k).and_then(|v| i32::try_from(v).ok());
        // Strings move out of the event (read everything else first).
        let text = |ev: &mut ParsedEvent, k: &str| ev.take_str(k).filter(|s| !s.is_empty());
        let peer = ev.str_field("peername").and_then(peer_address);
        let (peer_ip, peer_port) = (peer.map(|(ip, _)| ip), peer.and_then(|(_, port)| port).map(i32::from));
        let time = |k: &str| {
            let (ms, unit) = ev.time_field(k)?;
            if unit != Unit::Millis {
                metrics::counter!(crate::metrics::TIMESTAMPS_CONVERTED, "unit" => unit.as_str()).increment(1);
            }
            Some(ms)
        };
        let attributes = ev.attributes();
        let session_id = ev.session_id().map(str::to_string);
        let own_time = ["timestamp", "connected_at", "disconnected_at"].iter().any(|k| ev.time_field(k).is_some());
        let connected_at = time("connected_at");
        let disconnected_at = time("disconnected_at");
        let ts = time("timestamp")
            .or(match ev.event {
                EventType::Disconnected => disconnected_at,
                EventType::Connected => connected_at,
                EventType::Connack => None,
            })
            .or(origin.fallback_ts)
            .unwrap_or_else(crate::now_ms);
        let explicit_region = ev.field("client_attrs").and_then(|a| a.get("region")).and_then(Value::as_str);
        let node_name = ev.str_field("node").filter(|s| !s.is_empty());
        let region = regions.resolve(explicit_region, peer_ip, node_name);
        let resolved = ev.reason();
        let session_ms = match (ev.event, connected_at, disconnected_at) {
            (EventType::Disconnected, Some(from), Some(to)) if to >= from => Some(to - from),
            _ => None,
        };
        let (proto_ver, keepalive) = (int32(&ev, "proto_ver"), int32(&ev, "keepalive"));
        let expiry_interval = int(&ev, "expiry_interval");
        let clean_start = bool_field(ev.field("clean_start"));
        let (broker, initiator) = (ev.broker.as_str(), ev.initiator_of(resolved.as_ref()).map(|i| i.as_str()));
        let peer_ip = peer_ip.map(ip_text);
        let (reason, reason_code, category, is_failure) = match resolved {
            Some(r) => (Some(r.name), r.code.map(i32::from), Some(r.category.as_str()), r.is_failure),
            None => (None, None, None, false),
        };
        let mut row = Row {
            event: ev.event,
            ts,
            username: text(&mut ev, "username"),
            peer_ip: peer_ip.or_else(|| text(&mut ev, "peername")),
            peer_port,
            node: text(&mut ev, "node"),
            region,
            proto_name: text(&mut ev, "proto_name"),
            proto_ver,
            reason,
            reason_code,
            category,
            is_failure,
            keepalive,
            clean_start,
            expiry_interval,
            connected_at,
            disconnected_at,
            session_ms,
            kafka_partition: origin.partition,
            kafka_offset: origin.offset,
            fingerprint: None,
            broker,
            initiator,
            attributes,
            session_id,
            clientid: ev.clientid,
        };
        row.fingerprint = own_time.then(|| fingerprint(&row.cells()));
        Ok(row)
    }

    /// The row's values of the columns a fingerprint covers, in [`COLUMNS`]' order, as the
    /// `events` table holds them (times in microseconds).
    pub fn cells(&self) -> [Cell<'_>; COLUMNS.len()] {
        let us = |ms: Option<i64>| Cell::from(ms.map(|ms| ms.saturating_mul(1000)));
        [
            Cell::Text(self.event.as_str()),
            us(Some(self.ts)),
            Cell::Text(&self.clientid),
            self.username.as_deref().into(),
            self.peer_ip.as_deref().into(),
            self.peer_port.into(),
            self.node.as_deref().into(),
            self.proto_name.as_deref().into(),
            self.proto_ver.into(),
            self.reason.as_deref().into(),
            self.reason_code.into(),
            self.keepalive.into(),
            self.clean_start.into(),
            self.expiry_interval.into(),
            us(self.connected_at),
            us(self.disconnected_at),
            Cell::Text(self.broker),
            self.attributes.as_deref().into(),
            self.session_id.as_deref().into(),
        ]
    }
}

fn bool_field(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Row {
        let mut regions = RegionMap::default();
        regions.insert("10.0.0.0/8".parse().unwrap(), "eu");
        regions.insert("2001:db8::/32".parse().unwrap(), "ap");
        let origin = Origin { partition: 2, offset: 41, fallback_ts: Some(5), ..Default::default() };
        Row::parse(json.as_bytes(), &origin, &TopicMap::default(), &regions).unwrap()
    }

    #[test]
    fn connack_v3_code_resolves_with_region_from_the_peer() {
        let row = parse(
            r#"{"event":"client.connack","clientid":"c1","reason_code":"5","proto_ver":4,"peername":"10.1.2.3:5555","timestamp":1700000000123,"node":"emqx@a"}"#,
        );
        assert_eq!(row.event, EventType::Connack);
        assert_eq!(row.ts, 1_700_000_000_123);
        assert_eq!(row.reason.as_deref(), Some("not_authorized"));
        assert_eq!(row.reason_code, Some(5));
        assert!(row.is_failure);
        assert_eq!((row.peer_ip.as_deref(), row.peer_port), (Some("10.1.2.3"), Some(5555)));
        assert_eq!(&*row.region, "eu");
        assert_eq!((row.kafka_partition, row.kafka_offset), (2, 41));
    }

    #[test]
    fn disconnect_session_length_and_payload_region() {
        let row = parse(
            r#"{"clientid":"c2","reason":"keepalive_timeout","connected_at":1700000001000,"disconnected_at":1700000061000,"peername":"[2001:db8::1]:1883","client_attrs":{"region":"ap"}}"#,
        );
        assert_eq!(row.event, EventType::Disconnected);
        assert_eq!(row.ts, 1_700_000_061_000);
        assert_eq!(row.session_ms, Some(60000));
        assert_eq!(&*row.region, "ap");
        assert_eq!(row.peer_ip.as_deref(), Some("2001:db8::1"));
        assert_eq!(row.category, Some("network"));
        assert!(row.is_failure);
    }

    #[test]
    fn connected_without_timestamp_uses_the_fallback_chain() {
        let row = parse(
            r#"{"event":"client.connected","clientid":"c3","keepalive":"30","clean_start":true,"proto_ver":5,"expiry_interval":0,"peername":"bad"}"#,
        );
        assert_eq!(row.event, EventType::Connected);
        assert_eq!(row.ts, 5);
        assert_eq!((row.keepalive, row.clean_start), (Some(30), Some(true)));
        assert_eq!(&*row.region, "unknown");
        assert_eq!(row.peer_ip.as_deref(), Some("bad"));
        assert_eq!(row.reason, None);
        assert!(!row.is_failure);
    }

    #[test]
    fn ipv6_regions_do_not_depend_on_the_brokers_formatting() {
        for peer in ["2001:db8::7:4000", "[2001:db8::7]:4000", "2001:db8:0:0:0:0:0:7", "2001:DB8::7"] {
            let row = parse(&format!(r#"{{"clientid":"c","reason_code":0,"peername":"{peer}"}}"#));
            assert_eq!((row.peer_ip.as_deref(), &*row.region), (Some("2001:db8::7"), "ap"), "{peer}");
        }
        let row = parse(r#"{"clientid":"c","reason_code":0,"peername":"::ffff:10.9.8.7:4000"}"#);
        assert_eq!((row.peer_ip.as_deref(), row.peer_port, &*row.region), (Some("10.9.8.7"), Some(4000), "eu"));
    }

    #[test]
    fn timestamps_in_other_units_are_converted() {
        let row = parse(r#"{"clientid":"c","reason":"normal","connected_at":1700000000,"disconnected_at":1700000060}"#);
        assert_eq!((row.ts, row.session_ms), (1_700_000_060_000, Some(60_000)));
        let origin = Origin { partition: 0, offset: 0, ..Default::default() };
        let bad = Row::parse(
            br#"{"clientid":"c","reason_code":0,"timestamp":42}"#,
            &origin,
            &TopicMap::default(),
            &RegionMap::default(),
        );
        assert_eq!(bad.unwrap_err().kind(), "bad_timestamp");
    }

    #[test]
    fn the_event_header_wins_over_the_payloads_clues() {
        let json = br#"{"clientid":"c","reason_code":"normal"}"#;
        let origin = Origin { event: Some(EventType::Disconnected), ..Default::default() };
        let row = Row::parse(json, &origin, &TopicMap::default(), &RegionMap::default()).unwrap();
        assert_eq!(row.event, EventType::Disconnected);
    }
}
