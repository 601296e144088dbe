//! Other brokers' lifecycle events through the real pipeline: AWS IoT Core's and Azure Event
//! Grid's posted to ingest's `/events` (Azure's batched in an array, after its webhook
//! handshakes), VerneMQ's webhook bodies (one republished over MQTT, one posted with its
//! `vernemq-hook` header), a HiveMQ extension's listener calls over MQTT, and TDMQ's (EMQX's
//! shape) named by `--source-format` on its topics and `?source_format=` on a webhook; tansu,
//! transform, and the
//! warehouse holds each with its event type, canonical reason, category, initiator, broker and
//! region.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use connaudit_tests::*;
use serde_json::{json, Value};

/// 2019-11-06, the day of AWS's documentation examples.
const AWS: [&str; 4] = [
    r#"{"clientId":"186b5","timestamp":1573002230757,"eventType":"connected","sessionIdentifier":"a4666d2a7d844ae4ac5d7b38c9cb7967","principalIdentifier":"12345678901234567890123456789012","ipAddress":"192.0.2.0","versionNumber":0}"#,
    r#"{"clientId":"186b5","timestamp":1573002340451,"eventType":"disconnected","sessionIdentifier":"a4666d2a7d844ae4ac5d7b38c9cb7967","principalIdentifier":"12345678901234567890123456789012","clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT","versionNumber":0}"#,
    r#"{"clientId":"186b6","timestamp":1573002350000,"eventType":"connect_failed","connectFailureReason":"AUTHORIZATION_FAILED","principalIdentifier":"12345678901234567890123456789012","ipAddress":"192.0.2.7"}"#,
    r#"{"clientId":"186b7","timestamp":1573002360000,"eventType":"disconnected","sessionIdentifier":"b1","principalIdentifier":"p","clientInitiatedDisconnect":false,"disconnectReason":"DUPLICATE_CLIENTID","versionNumber":3}"#,
];

const AZURE: &str = r#"[
 {"id":"6f1b70b8-557a-4865-9a1c-94cc3def93db","topic":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myrg/providers/Microsoft.EventGrid/namespaces/myns",
  "subject":"clientAuthenticationName/client1/clientSessionName/session1","eventType":"Microsoft.EventGrid.MQTTClientSessionConnected",
  "eventTime":"2023-07-29T01:14:34.2048108Z","data":{"namespaceName":"myns","clientAuthenticationName":"client1","clientSessionName":"session1","sequenceNumber":1},
  "dataVersion":"1","metadataVersion":"1"},
 {"specversion":"1.0","id":"8d9a5d2f","source":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myrg/providers/Microsoft.EventGrid/namespaces/myns",
  "subject":"clientAuthenticationName/client1/clientSessionName/session1","type":"Microsoft.EventGrid.MQTTClientSessionDisconnected",
  "time":"2023-07-29T01:20:00Z","data":{"namespaceName":"myns","clientAuthenticationName":"client1","clientSessionName":"session1","sequenceNumber":"2","disconnectionReason":"SessionTakenOver"}}
]"#;

const VERNEMQ: [(&str, &str); 2] = [
    (
        "vernemq/on_register",
        r#"{"peer_addr":"10.1.0.9","peer_port":8888,"username":"username","mountpoint":"","client_id":"client-id"}"#,
    ),
    ("vernemq/on_client_offline", r#"{"mountpoint":"","client_id":"client-id"}"#),
];

/// A HiveMQ extension's `ClientLifecycleEventListener` calls (docs/ARCHITECTURE.md), with the
/// SDK's names; on 2024-12-02.
const HIVEMQ: [&str; 3] = [
    r#"{"event":"onAuthenticationSuccessful","clientId":"dev-h1","timestamp":1733130000000,"node":"hivemq-1","inetAddress":"10.1.0.20","mqttVersion":"V_5","userName":"fleet"}"#,
    r#"{"event":"onServerInitiatedDisconnect","clientId":"dev-h1","timestamp":1733130060000,"node":"hivemq-1","inetAddress":"10.1.0.20","mqttVersion":"V_5","userName":"fleet","reasonCode":142,"reasonString":"Another client connected with the same client id"}"#,
    r#"{"event":"onAuthenticationFailedDisconnect","clientId":"dev-h2","timestamp":1733130070000,"node":"hivemq-1","inetAddress":"10.1.0.21","mqttVersion":"V_3_1_1","userName":"fleet","reasonCode":"BAD_USER_NAME_OR_PASSWORD","connected":false}"#,
];

/// TDMQ for MQTT: EMQX's shape, so only the topic (or the webhook's URL) can say it is TDMQ.
const TDMQ: [&str; 2] = [
    r#"{"clientid":"t1","event":"client.connected","username":"u1","peername":"192.0.2.44:51000","timestamp":1733130100000,"node":"tdmq-a"}"#,
    r#"{"clientid":"t1","event":"client.disconnected","username":"u1","reason":"keepalive_timeout","peername":"192.0.2.44:51000","timestamp":1733130200000,"node":"tdmq-a"}"#,
];

#[test]
fn every_brokers_events_land_with_one_taxonomy() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let Stack { mqtt, kafka, topic, dlq, alerts } = Stack::start(2)?;
    let (runtime, bootstrap) = (tokio::runtime::Runtime::new()?, kafka.bootstrap());

    let http = format!("127.0.0.1:{}", free_port());
    let (mqtt_url, client_id) = (format!("mqtt://127.0.0.1:{}", mqtt.port), unique("ingest"));
    #[rustfmt::skip]
    let ingest = Connaudit::start(&[
        "ingest", "--mqtt-url", &mqtt_url, "--mqtt-client-id", &client_id, "--kafka-brokers", &bootstrap,
        "--mqtt-topic", "vernemq/+", "--mqtt-topic", "hivemq/+", "--mqtt-topic", "tdmq/#",
        "--source-format", "tdmq/#=tdmq",
        "--kafka-topic", &topic, "--kafka-dlq-topic", &dlq, "--http-listen", &http,
    ], &dir.path().join("ingest.log"))?;
    let warehouse = dir.path().join("warehouse").display().to_string();
    let regions = dir.path().join("regions.csv");
    std::fs::write(&regions, "cidr,region\n192.0.2.0/24,us-west\n10.1.0.0/16,eu-west\n")?;
    let (group, regions) = (unique("g"), regions.display().to_string());
    #[rustfmt::skip]
    let transform = Connaudit::start(&[
        "transform", "--kafka-brokers", &bootstrap, "--kafka-topic", &topic, "--group", &group,
        "--kafka-dlq-topic", &dlq, "--kafka-alerts-topic", &alerts, "--warehouse", &warehouse,
        "--regions", &regions, "--batch-idle-secs", "1", "--http-listen", &format!("127.0.0.1:{}", free_port()),
    ], &dir.path().join("transform.log"))?;

    runtime.block_on(async {
        wait_ready(&http, Duration::from_secs(30)).await?;
        let client = reqwest::Client::new();
        let url = format!("http://{http}/events");
        // Azure Event Grid's handshakes: CloudEvents' OPTIONS, then its own schema's validation.
        let options = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("WebHook-Request-Origin", "eventgrid.azure.net")
            .send()
            .await?;
        assert_eq!(options.headers()["webhook-allowed-origin"], "eventgrid.azure.net");
        let validation = json!([{"id": "2d1781af", "topic": "/subscriptions/x", "subject": "",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://example.invalid"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2023-07-29T01:00:00Z",
            "metadataVersion": "1", "dataVersion": "1"}]);
        let answer: Value = client
            .post(&url)
            .header("aeg-event-type", "SubscriptionValidation")
            .json(&validation)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(answer, json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}));
        for body in AWS.iter().copied().chain([AZURE]) {
            let r: Value = client.post(&url).body(body).send().await?.error_for_status()?.json().await?;
            assert_eq!(r["dead_lettered"], 0, "{body}");
        }
        // VerneMQ: on_register republished over MQTT; on_client_offline as its webhook posts it.
        let (publisher, _loop) = publisher(mqtt.port).await?;
        publish_all(&publisher, &[(VERNEMQ[0].0.to_string(), VERNEMQ[0].1)], None).await?;
        let r: Value = client
            .post(&url)
            .header("vernemq-hook", "on_client_offline")
            .body(VERNEMQ[1].1)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(r["accepted"], 1, "{r}");
        // HiveMQ over MQTT; TDMQ's connect on a topic set to TDMQ, its disconnect posted to a
        // URL that says it; an AWS payload on the TDMQ topic is the wrong shape there.
        let mut mqtt_events: Vec<(String, &str)> = HIVEMQ.iter().map(|p| ("hivemq/lifecycle".to_string(), *p)).collect();
        mqtt_events.push(("tdmq/client_connected".to_string(), TDMQ[0]));
        mqtt_events.push(("tdmq/client_connected".to_string(), AWS[0]));
        publish_all(&publisher, &mqtt_events, None).await?;
        let r: Value =
            client.post(format!("{url}?source_format=tdmq")).body(TDMQ[1]).send().await?.error_for_status()?.json().await?;
        assert_eq!(r["accepted"], 1, "{r}");
        let refused = client.post(format!("{url}?source_format=mosquitto")).body(TDMQ[1]).send().await?;
        assert_eq!(refused.status(), 400);
        assert!(refused.text().await?.contains("unknown source format `mosquitto`"));
        // A CONNECT received is not an outcome: dead-lettered with its reason.
        let start = HIVEMQ[0].replace("onAuthenticationSuccessful", "onMqttConnectionStart");
        let r: Value = client.post(&url).body(start).send().await?.error_for_status()?.json().await?;
        assert_eq!(r["dead_lettered"], 1, "{r}");
        anyhow::Ok(())
    })?;

    let sql = "SELECT broker, event, clientid, username, reason, category, initiator, region, \
               CAST(ts AS VARCHAR) AS ts FROM warehouse.events ORDER BY broker, ts, event";
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let (code, out, err) = fixture::run(&["query", "--warehouse", &warehouse, "--format", "json", sql])?;
        let rows: Vec<Value> = if code == 0 { serde_json::from_str(&out)? } else { Vec::new() };
        if rows.len() >= 13 {
            break rows;
        }
        if Instant::now() > deadline {
            bail!("{} of 13 events in the warehouse ({err}); logs in {}", rows.len(), dir.path().display());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| {
            ["broker", "event", "clientid", "username", "reason", "category", "initiator", "region"]
                .map(|k| r[k].as_str().unwrap_or("-").to_string())
                .join(" ")
        })
        .collect();
    let want = [
        "aws-iot client.connected 186b5 12345678901234567890123456789012 - - - us-west",
        "aws-iot client.disconnected 186b5 12345678901234567890123456789012 normal normal client unknown",
        "aws-iot client.connack 186b6 12345678901234567890123456789012 not_authorized authorization - us-west",
        "aws-iot client.disconnected 186b7 p takenover session-conflict server unknown",
        "azure-eventgrid client.connected session1 client1 - - - unknown",
        "azure-eventgrid client.disconnected session1 client1 takenover session-conflict server unknown",
        "hivemq client.connected dev-h1 fleet - - - eu-west",
        "hivemq client.disconnected dev-h1 fleet takenover session-conflict server eu-west",
        "hivemq client.connack dev-h2 fleet bad_username_or_password authentication - eu-west",
        "tdmq client.connected t1 u1 - - - us-west",
        "tdmq client.disconnected t1 u1 keepalive_timeout network network us-west",
        "vernemq client.connected client-id username - - - eu-west",
        "vernemq client.disconnected client-id - - - unknown unknown",
    ];
    // VerneMQ's two arrive by two paths at once: compare as sets.
    got.sort();
    let mut want = want.map(String::from).to_vec();
    want.sort();
    assert_eq!(got, want, "{rows:#?}");
    // Event Grid's 100 ns precision, kept to the millisecond.
    let connected = rows.iter().find(|r| r["broker"] == "azure-eventgrid" && r["event"] == "client.connected");
    assert_eq!(connected.map(|r| &r["ts"]), Some(&Value::from("2023-07-29T01:14:34.204Z")), "{rows:#?}");
    // Connect attempts per region: AWS's connect_failed and its connects, Azure's and VerneMQ's
    // connects (none of the three announces a successful CONNACK).
    let sql =
        "SELECT region, CAST(sum(connacks) AS BIGINT) AS attempts, CAST(sum(failed_connacks) AS BIGINT) AS failed \
               FROM warehouse.region_failures GROUP BY region ORDER BY region";
    let (_, out, err) = fixture::run(&["query", "--warehouse", &warehouse, "--format", "csv", sql])?;
    // HiveMQ's connect and its refused CONNECT in eu-west; TDMQ's connect has its CONNACK
    // elsewhere (EMQX's shape announces CONNACKs), so it is no attempt.
    assert_eq!(out, "region,attempts,failed\neu-west,3,1\nunknown,1,0\nus-west,2,1\n", "{err}");
    // Sessions online per hour from each broker's shape (AWS's and VerneMQ's disconnects carry
    // no address: region `unknown`, the session its connect's) equal a recount from `sessions`
    // and `events`, once transform committed every table of the last batch.
    let recount = crate::faults::recount::ONLINE_AGAINST_RECOUNT;
    let deadline = Instant::now() + Duration::from_secs(20);
    let online = loop {
        let (_, out, err) = fixture::run(&["query", "--warehouse", &warehouse, "--format", "json", recount])?;
        let row = serde_json::from_str::<Vec<Value>>(&out).ok().and_then(|r| r.into_iter().next());
        match row {
            Some(row) if row["mismatched"] == 0 || Instant::now() > deadline => break row,
            None if Instant::now() > deadline => bail!("the recount failed: {err}"),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    };
    assert_eq!(online["mismatched"], 0, "online_hours unlike a recount: {online}");
    assert!(online["sessions"].as_i64() >= Some(6), "{online}");
    // The AWS payload on the TDMQ topic: transform dead-letters it with the reason.
    let dead = runtime.block_on(read_topic(&bootstrap, &dlq, 2, Duration::from_secs(20)))?;
    let kinds: Vec<&str> = dead.iter().filter_map(|r| r.headers.get("error_kind").map(String::as_str)).collect();
    assert!(kinds.contains(&"wrong_format"), "{kinds:?}");
    assert!(kinds.contains(&"unknown_event_type"), "{kinds:?}");
    transform.stop()?;
    ingest.stop()?;
    Ok(())
}
