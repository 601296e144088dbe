//! Malformed payloads go to the dead-letter topic with the reason, and the service goes on.

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_go_to_the_dlq_with_their_error() -> Result<()> {
    let rig = Rig::start(1).await?;
    let cfg = rig.config(&["client_connack", "misc/unmapped"]);
    let ingest = Ingest::start(cfg).await?;

    let bad = [
        ("client_connack", "this is not json", "not_json"),
        ("client_connack", "[1,2,3]", "not_object"),
        ("client_connack", r#"{"reason_code":"success"}"#, "missing_clientid"),
        ("misc/unmapped", r#"{"clientid":"c9","color":"blue"}"#, "unknown_event_type"),
        // Year 5138 in milliseconds (1973 in microseconds), and 42: no plausible time in any unit.
        ("client_connack", r#"{"clientid":"c10","reason_code":0,"timestamp":99999999999999}"#, "bad_timestamp"),
        ("client_connack", r#"{"clientid":"c11","reason_code":0,"timestamp":42}"#, "bad_timestamp"),
    ];
    let mut all: Vec<(String, String)> = bad.iter().map(|(t, p, _)| (t.to_string(), p.to_string())).collect();
    all.push(event(0, 7)); // a good one after the bad ones
                           // Seconds are told from milliseconds by their size: passed on untouched, transform converts.
    all.push(("client_connack".into(), r#"{"clientid":"c12","reason_code":0,"timestamp":1700000000,"seq":8}"#.into()));
    all.push((
        "client_connack".into(),
        r#"{"clientid":"c13","reason_code":0,"timestamp":"2023-11-14T22:13:20Z","seq":9}"#.into(),
    ));
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &all, None).await?;

    let dead = rig.read(&rig.dlq(), bad.len(), 30).await?;
    assert_eq!(dead.len(), bad.len());
    for (mqtt_topic, payload, kind) in bad {
        let read = dead.iter().find(|r| r.payload == payload.as_bytes()).expect("payload kept byte for byte");
        assert_eq!(read.headers["error_kind"], kind);
        assert!(!read.headers["error"].is_empty());
        assert_eq!(read.headers["mqtt_topic"], mqtt_topic);
    }
    let good = rig.read(&rig.topic, 3, 30).await?;
    assert_eq!(seqs(&good), vec![7, 8, 9], "the service kept going");

    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    for kind in ["not_json", "not_object", "missing_clientid", "unknown_event_type", "bad_timestamp"] {
        assert!(metrics.contains(&format!("connaudit_events_dead_lettered_total{{error=\"{kind}\"}}")), "{kind}");
    }
    ingest.stop().await
}
