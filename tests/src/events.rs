//! Sample EMQX-shaped events, numbered so a test can tell which arrived.

use crate::kafka::Read;

/// Event `seq` of type `kind % 3` (connack, connected, disconnected) on its default topic.
/// Connacks carry the `event` field (as `SELECT *` does); the others are column subsets.
pub fn event(kind: usize, seq: usize) -> (String, String) {
    // Milliseconds from 2023-11-14, a millisecond apart.
    let ts = 1_700_000_000_000 + seq as u64;
    let client = format!("dev-{:04}", seq % 97);
    match kind % 3 {
        0 => (
            "client_connack".into(),
            format!(
                r#"{{"reason_code":"{}","clientid":"{client}","username":"u","peername":"10.0.0.{}:4000","proto_ver":5,"timestamp":{ts},"node":"emqx@n1","event":"client.connack","seq":{seq}}}"#,
                if seq.is_multiple_of(5) { "not_authorized" } else { "success" },
                seq % 250
            ),
        ),
        1 => (
            "client_connected".into(),
            format!(r#"{{"clientid":"{client}","username":"u","connected_at":{ts},"keepalive":60,"seq":{seq}}}"#),
        ),
        _ => (
            "client_disconnected".into(),
            format!(r#"{{"clientid":"{client}","reason":"keepalive_timeout","disconnected_at":{ts},"seq":{seq}}}"#),
        ),
    }
}

/// The sorted `seq` fields of the records read back (`u64::MAX` where there is none).
pub fn seqs(reads: &[Read]) -> Vec<u64> {
    let mut v: Vec<u64> = reads
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.payload)
                .ok()
                .and_then(|v| v["seq"].as_u64())
                .unwrap_or(u64::MAX)
        })
        .collect();
    v.sort();
    v
}
