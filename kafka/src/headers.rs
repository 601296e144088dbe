//! The headers of a record on the events topic and on the dead-letter topic.

/// Header names.
pub mod header {
    /// When ingest received the event, ms since the epoch (the event's time when it has none).
    pub const RECEIVED_AT: &str = "received_at";
    /// Where it came from: `mqtt`, `http` (or `transform` for a record transform refused).
    pub const SOURCE: &str = "source";
    /// The MQTT topic it arrived on.
    pub const MQTT_TOPIC: &str = "mqtt_topic";
    /// Whose format the topic carries (`--source-format`): `emqx`, `tdmq`, `aws-iot`, ...
    pub const SOURCE_FORMAT: &str = "source_format";
    /// The event type ingest read (`client.connack`, ...), so transform need not guess again.
    pub const EVENT: &str = "event";
    /// A dead letter's reason, for a person.
    pub const ERROR: &str = "error";
    /// A dead letter's reason, for a program: `not_json`, `wrong_format`, `kafka_refused`, ...
    pub const ERROR_KIND: &str = "error_kind";
    /// A dead letter's original size, when its payload was cut to fit.
    pub const TRUNCATED_FROM: &str = "truncated_from";
    /// Why Kafka refused a dead letter transform sent whole (it is then sent cut).
    pub const KAFKA_REFUSED: &str = "kafka_refused";
    /// Where a record transform refused was read: its topic, partition and offset.
    pub const SOURCE_TOPIC: &str = "source_topic";
    pub const SOURCE_PARTITION: &str = "source_partition";
    pub const SOURCE_OFFSET: &str = "source_offset";
    /// An alert's kind, on the alerts topic.
    pub const ALERT_KIND: &str = "kind";
}

/// The headers ingest writes on an event and transform reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHeaders<'a> {
    pub received_at_ms: Option<i64>,
    pub source: Option<&'a str>,
    pub mqtt_topic: Option<&'a str>,
    pub source_format: Option<&'a str>,
    pub event: Option<&'a str>,
}

impl<'a> EventHeaders<'a> {
    /// The headers as names and values, in the order ingest writes them; absent ones left out.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(5);
        if let Some(at) = self.received_at_ms {
            out.push((header::RECEIVED_AT, at.to_string()));
        }
        let text = [
            (header::SOURCE, self.source),
            (header::MQTT_TOPIC, self.mqtt_topic),
            (header::SOURCE_FORMAT, self.source_format),
            (header::EVENT, self.event),
        ];
        out.extend(text.into_iter().filter_map(|(k, v)| v.map(|v| (k, v.to_string()))));
        out
    }

    /// Reads them from a record's headers, in one pass; the first of a name counts, as a lookup
    /// by name finds it, and a value that is not UTF-8 (or not a number) is absent.
    pub fn read(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut out = EventHeaders::default();
        let (mut seen_at, mut seen) = (false, [false; 4]);
        for (key, value) in headers {
            let text = value.and_then(|v| std::str::from_utf8(v).ok());
            let slot = match key {
                header::RECEIVED_AT => {
                    if !seen_at {
                        seen_at = true;
                        out.received_at_ms = text.and_then(|t| t.parse().ok());
                    }
                    continue;
                }
                header::SOURCE => (0, &mut out.source),
                header::MQTT_TOPIC => (1, &mut out.mqtt_topic),
                header::SOURCE_FORMAT => (2, &mut out.source_format),
                header::EVENT => (3, &mut out.event),
                _ => continue,
            };
            if !seen[slot.0] {
                seen[slot.0] = true;
                *slot.1 = text;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ingest_writes_transform_reads() {
        let written = EventHeaders {
            received_at_ms: Some(1_700_000_000_000),
            source: Some("mqtt"),
            mqtt_topic: Some("$events/client_connected"),
            source_format: Some("tdmq"),
            event: Some("client.connected"),
        };
        let pairs = written.pairs();
        let read = EventHeaders::read(pairs.iter().map(|(k, v)| (*k, Some(v.as_bytes()))));
        assert_eq!(read, written);
    }

    #[test]
    fn the_first_of_a_name_counts_and_bad_values_are_absent() {
        let headers: Vec<(&str, Option<&[u8]>)> = vec![
            (header::EVENT, Some(b"client.connack")),
            (header::EVENT, Some(b"client.connected")),
            (header::RECEIVED_AT, Some(b"soon")),
            (header::MQTT_TOPIC, Some(&[0xff, 0xfe])),
            ("other", Some(b"x")),
        ];
        let read = EventHeaders::read(headers);
        assert_eq!(read.event, Some("client.connack"));
        assert_eq!(read.received_at_ms, None);
        assert_eq!(read.mqtt_topic, None);
    }
}
