//! A deterministic fleet of EMQX-shaped events with known answers, for warehouse tests.
//! The expected counts are computed here from the generator's own choices, not by connaudit.

use std::collections::BTreeMap;

/// One record to produce: Kafka key, payload, and whether it carries ingest's headers.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub payload: String,
    pub with_headers: bool,
    pub event: &'static str,
}

/// Expected answers per region: connacks, failed connacks, disconnects, abnormal disconnects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Truth {
    pub events: BTreeMap<&'static str, u64>,
    pub regions: BTreeMap<&'static str, [u64; 4]>,
    pub reasons: BTreeMap<String, u64>,
    pub malformed: u64,
}

pub const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

/// The `cidr,region` file matching the peer addresses below.
pub const REGIONS_CSV: &str = "cidr,region\n10.1.0.0/16,eu-west\n10.2.0.0/16,us-east\n2001:db8::/32,ap-south\n";

/// `n` records for `clients` devices, timestamps spread over `span_ms` from `start_ms`;
/// every `malformed_every`th record is not JSON (0 for none).
pub fn fleet(n: usize, clients: usize, start_ms: i64, span_ms: i64, malformed_every: usize) -> (Vec<Record>, Truth) {
    fleet_part(n, clients, start_ms, span_ms, malformed_every, 0..n)
}

/// The records of `fleet(n, ...)` numbered `part`, and their truth: a large fleet in chunks.
pub fn fleet_part(
    n: usize,
    clients: usize,
    start_ms: i64,
    span_ms: i64,
    malformed_every: usize,
    part: std::ops::Range<usize>,
) -> (Vec<Record>, Truth) {
    let mut truth = Truth::default();
    let mut out = Vec::with_capacity(part.len());
    for i in part {
        let c = i % clients;
        let clientid = format!("dev-{c:05}");
        if malformed_every > 0 && i % malformed_every == malformed_every - 1 {
            truth.malformed += 1;
            out.push(Record { key: clientid, payload: format!("garbage {i}"), with_headers: i % 2 == 0, event: "" });
            continue;
        }
        let region = c % 3;
        let peer = match region {
            0 => format!("10.1.{}.{}:{}", c / 250 % 250, c % 250, 40000 + c % 1000),
            1 => format!("10.2.{}.{}:{}", c / 250 % 250, c % 250, 40000 + c % 1000),
            _ => format!("[2001:db8::{:x}]:{}", c + 1, 40000 + c % 1000),
        };
        let ts = start_ms + (i as i64 * span_ms) / n as i64;
        let v5 = c.is_multiple_of(2);
        let stats = truth.regions.entry(REGIONS[region]).or_default();
        let (event, payload) = match (i / clients) % 3 {
            0 => {
                let (raw, name, failed) = match (v5, i % 7, region) {
                    (true, 0, _) => ("\"not_authorized\"".to_string(), "not_authorized", true),
                    (true, 1 | 2, 1) => ("\"server_busy\"".into(), "server_busy", true),
                    (true, _, _) => ("\"success\"".into(), "success", false),
                    (false, 3, _) => ("4".into(), "bad_username_or_password", true),
                    (false, _, _) => ("0".into(), "success", false),
                };
                stats[0] += 1;
                stats[1] += u64::from(failed);
                *truth.reasons.entry(format!("connack:{name}")).or_default() += 1;
                let ver = if v5 { 5 } else { 4 };
                (
                    "client.connack",
                    format!(
                        r#"{{"event":"client.connack","reason_code":{raw},"clientid":"{clientid}","username":"u{c}","peername":"{peer}","proto_name":"MQTT","proto_ver":{ver},"keepalive":60,"clean_start":false,"expiry_interval":7200,"timestamp":{ts},"node":"emqx@node{}"}}"#,
                        region + 1
                    ),
                )
            }
            1 => (
                "client.connected",
                format!(
                    r#"{{"event":"client.connected","clientid":"{clientid}","username":"u{c}","peername":"{peer}","proto_name":"MQTT","proto_ver":5,"keepalive":60,"clean_start":false,"expiry_interval":7200,"connected_at":{ts},"timestamp":{ts},"node":"emqx@node{}"}}"#,
                    region + 1
                ),
            ),
            _ => {
                let (reason, abnormal) = match i % 4 {
                    0 => ("normal", false),
                    1 => ("keepalive_timeout", true),
                    2 => ("takenover", true),
                    _ => ("tcp_closed", true),
                };
                stats[2] += 1;
                stats[3] += u64::from(abnormal);
                *truth.reasons.entry(format!("disconnect:{reason}")).or_default() += 1;
                // Some records come without an `event` field, as a narrower SELECT gives.
                let event_field = if i % 5 == 0 { "" } else { r#""event":"client.disconnected","# };
                (
                    "client.disconnected",
                    format!(
                        r#"{{{event_field}"clientid":"{clientid}","username":"u{c}","peername":"{peer}","reason":"{reason}","connected_at":{},"disconnected_at":{ts},"timestamp":{ts},"node":"emqx@node{}"}}"#,
                        // The session the client's previous event began (as EMQX says).
                        start_ms + ((i - clients) as i64 * span_ms) / n as i64,
                        region + 1
                    ),
                )
            }
        };
        *truth.events.entry(event).or_default() += 1;
        out.push(Record { key: clientid, payload, with_headers: i % 3 != 0, event });
    }
    (out, truth)
}
