//! `POST /events` trusts nobody by default: a bearer token, a body limit, an event limit and a
//! cap on concurrent requests, each answered with its status before anything is stored.

use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_limits_refuse_with_their_status() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack"]);
    cfg.http_token = Some("s3cret-token".into());
    cfg.http_max_body_bytes = 4096;
    cfg.http_max_events = 3;
    cfg.http_max_concurrent = 1;
    cfg.http_timeout_secs = 4;
    let ingest = Ingest::start(cfg).await?;
    let url = format!("http://{}/events", ingest.http);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;
    let two = format!("[{},{}]", event(0, 1).1, event(0, 2).1);

    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.post(&url).body(two.clone()).send().await?), 401, "no token");
    assert_eq!(status(http.post(&url).bearer_auth("wrong").body(two.clone()).send().await?), 401, "wrong token");
    assert_eq!(status(http.post(&url).bearer_auth("s3cret-token").body(two.clone()).send().await?), 200);
    let big = format!("[{}]", vec![event(0, 3).1; 40].join(","));
    assert_eq!(status(http.post(&url).bearer_auth("s3cret-token").body(big).send().await?), 413, "body");
    let four = format!("[{}]", (10..14).map(|i| event(0, i).1).collect::<Vec<_>>().join(","));
    assert_eq!(status(http.post(&url).bearer_auth("s3cret-token").body(four).send().await?), 413, "events");

    // With Kafka down a request waits for its confirmation; a second one meanwhile gets 429.
    kafka.broker_down(1)?;
    let waiting = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.post(&url).bearer_auth("s3cret-token").body(event(0, 20).1).send().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(http.post(&url).bearer_auth("s3cret-token").body(event(0, 21).1).send().await?), 429);
    assert_eq!(status(waiting.await??), 503, "the first one times out as before");
    kafka.broker_up(1)?;

    let reads = read_topic(&bootstrap, &topic, 2, Duration::from_secs(30)).await?;
    assert_eq!(seqs(&reads)[..2], [1, 2], "only the accepted request's events");
    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    for code in ["401", "413", "429"] {
        assert!(metrics.contains(&format!("connaudit_http_requests_refused_total{{status=\"{code}\"}}")), "{code}");
    }
    ingest.stop().await
}
