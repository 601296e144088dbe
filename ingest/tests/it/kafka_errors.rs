//! Kafka trouble is visible, never a silent retry loop: a stalled pipeline and a topic Kafka
//! refuses fail readiness until they clear, and a fatal producer error stops the service.

use std::time::Duration;

use anyhow::Result;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_pipeline_fails_readiness_and_says_so() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack"]);
    cfg.stall_timeout_secs = 2;
    let ingest = Ingest::start(cfg).await?;
    let (client, _loop) = publisher(mqtt.port).await?;

    kafka.broker_down(1)?;
    publish_all(&client, &(0..5).map(|i| event(0, i)).collect::<Vec<_>>(), None).await?;
    readyz_until(ingest.http, "stalled", |s, b| s == 503 && b.contains(r#""stalled":true"#)).await?;
    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    assert_eq!(metric(&metrics, "connaudit_pipeline_stalled"), Some(1.0));

    kafka.broker_up(1)?;
    readyz_until(ingest.http, "ready again", |s, b| s == 200 && b.contains(r#""stalled":false"#)).await?;
    assert_eq!(seqs(&read_topic(&bootstrap, &topic, 5, Duration::from_secs(30)).await?), (0..5).collect::<Vec<_>>());
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_kafka_refuses_fails_readiness_until_it_accepts() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let ingest = Ingest::start(config(mqtt.port, &bootstrap, &topic, &["client_connack"])).await?;
    let (client, _loop) = publisher(mqtt.port).await?;

    // Produce requests refused as an ACL would, until the "operator" grants it. (A fixed
    // number of refusals made this test flaky: librdkafka also fails messages locally while
    // the topic's metadata carries the error, so how long the refusals last was up to timing.)
    let denied = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 1000];
    kafka.request_errors(RDKafkaApiKey::Produce, &denied);
    publish_all(&client, &[("client_connack".to_string(), "not json".to_string())], None).await?;
    let body = readyz_until(ingest.http, "the refused topic", |s, b| s == 503 && b.contains("kafka topic")).await?;
    assert!(body.contains(&format!("{topic}.dlq")), "{body}");
    kafka.clear_request_errors(RDKafkaApiKey::Produce);
    readyz_until(ingest.http, "ready again", |s, _| s == 200).await?;
    assert_eq!(read_topic(&bootstrap, &format!("{topic}.dlq"), 1, Duration::from_secs(20)).await?.len(), 1);
    ingest.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_producer_error_stops_the_service() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    // The idempotent producer cannot get its id: librdkafka raises a fatal error.
    let denied = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED];
    kafka.request_errors(RDKafkaApiKey::InitProducerId, &denied);
    let cfg = config(mqtt.port, &kafka.bootstrap_servers(), &topic, &["client_connack"]);
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(connaudit_ingest::run(cfg, stop.clone()));
    let (client, _loop) = publisher(mqtt.port).await?;
    publish_all(&client, &[event(0, 1)], None).await?;
    let result = tokio::time::timeout(Duration::from_secs(60), run).await??;
    let err = result.expect_err("the service stops on its own").to_string();
    assert!(err.contains("fatal"), "{err}");
    assert!(stop.is_cancelled());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_fails_readiness_and_is_named() -> Result<()> {
    let mqtt = Server::mosquitto()?;
    let kafka = Server::tansu()?;
    let topic = unique("events");
    create_topics(&kafka.bootstrap(), &[&topic], 1).await?;
    let cfg = config(mqtt.port, &kafka.bootstrap(), &topic, &["client_connack"]);
    let http = cfg.http_listen;
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(connaudit_ingest::run(cfg, stop.clone()));

    let body = readyz_until(http, "the missing topic", |s, b| s == 503 && b.contains("has no topic")).await?;
    assert!(body.contains(&format!("{topic}.dlq")), "{body}");
    create_topics(&kafka.bootstrap(), &[&format!("{topic}.dlq")], 1).await?;
    readyz_until(http, "ready once the topic exists", |s, _| s == 200).await?;
    stop.cancel();
    run.await??;
    Ok(())
}
