//! `POST /events` against a client that lies and stalls: an Event Grid handshake header does
//! not stand in for the token, a body that never finishes is cut at its deadline, and bodies
//! held at once stay within their memory budget; none of them puts anything into Kafka.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

const TOKEN: &str = "s3cret-token";

/// Sends the head of a POST declaring `length` bytes and `sent` of them; the socket stays open.
async fn partial_post(http: std::net::SocketAddr, length: usize, sent: usize) -> Result<TcpStream> {
    let mut socket = TcpStream::connect(http).await?;
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&vec![b' '; sent]).await?;
    Ok(socket)
}

/// The status line's code of what the server answered on `socket` (or 0 if it closed).
async fn status(socket: &mut TcpStream) -> Result<u16> {
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_header_a_stalled_body_and_a_flood_of_bodies_put_nothing_in_kafka() -> Result<()> {
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack"]);
    cfg.http_token = Some(TOKEN.into());
    cfg.http_max_body_bytes = 4096;
    cfg.http_max_body_memory = 8192;
    cfg.http_body_timeout_secs = 1;
    let ingest = Ingest::start(cfg).await?;
    let url = format!("http://{}/events", ingest.http);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build()?;

    // The handshake header with an ordinary event and no token: refused, nothing produced.
    let handshake = |body: String| http.post(&url).header("aeg-event-type", "SubscriptionValidation").body(body);
    let sneaked = handshake(event(0, 1).1).send().await?;
    assert_eq!(sneaked.status().as_u16(), 401, "{}", sneaked.text().await?);
    let sneaked_array = handshake(format!("[{}]", event(0, 2).1)).send().await?;
    assert_eq!(sneaked_array.status().as_u16(), 401);
    // A real handshake still gets its code back without the token, as Event Grid needs.
    let validation = r#"[{"id":"1","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent",
        "data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]"#;
    let answered = handshake(validation.to_string()).send().await?;
    assert_eq!(answered.status().as_u16(), 200);
    assert!(answered.text().await?.contains("512d38b6"));

    // A body that stops halfway: 408 at the deadline, not a request held forever.
    let started = Instant::now();
    let mut stalled = partial_post(ingest.http, 1000, 10).await?;
    assert_eq!(status(&mut stalled).await?, 408);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    // Two stalled 4 KiB bodies hold the 8 KiB budget: a third is refused at once (503),
    // before its body is read; once they are cut, requests pass again.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(partial_post(ingest.http, 4096, 100).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = http.post(&url).bearer_auth(TOKEN).body(event(0, 3).1).send().await?;
    assert_eq!(refused.status().as_u16(), 503, "{}", refused.text().await?);
    for socket in &mut held {
        assert_eq!(status(socket).await?, 408);
    }
    let accepted = http.post(&url).bearer_auth(TOKEN).body(event(0, 4).1).send().await?;
    assert_eq!(accepted.status().as_u16(), 200);

    let reads = read_topic(&bootstrap, &topic, 1, Duration::from_secs(30)).await?;
    assert_eq!(seqs(&reads), [4], "only the event posted with the token");
    let metrics = reqwest::get(format!("http://{}/metrics", ingest.http)).await?.text().await?;
    for (code, want) in [("401", 2.0), ("408", 3.0), ("503", 1.0)] {
        let name = format!("connaudit_http_requests_refused_total{{status=\"{code}\"}}");
        assert_eq!(metric(&metrics, &name), Some(want), "{code}");
    }
    ingest.stop().await
}

/// A seeded fuzzer over the webhook's request without the token: random headers (the Event
/// Grid ones among them), Content-Length that lies, random bodies (events among them). No
/// input may put an event into Kafka or take the server down. `CONNAUDIT_FUZZ_SECS` (15).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_the_webhook_without_the_token_produces_nothing() -> Result<()> {
    use rand::{Rng, SeedableRng};
    let (mqtt, kafka, topic) = mock_rig(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let mut cfg = config(mqtt.port, &bootstrap, &topic, &["client_connack"]);
    cfg.http_token = Some(TOKEN.into());
    cfg.http_max_body_bytes = 4096;
    cfg.http_body_timeout_secs = 1;
    let ingest = Ingest::start(cfg).await?;
    let budget =
        Duration::from_secs(std::env::var("CONNAUDIT_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15));
    let mut rng = rand::rngs::StdRng::seed_from_u64(26);
    let headers = [
        "aeg-event-type: SubscriptionValidation",
        "aeg-event-type: Notification",
        "AEG-EVENT-TYPE: subscriptionvalidation",
        "webhook-request-origin: eventgrid.azure.net",
        "vernemq-hook: on_register",
        "Authorization: Bearer wrong",
        "Authorization: Bearer ",
        "Authorization: bearer s3cret-token",
        "Authorization: Basic czNjcmV0LXRva2Vu",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        "Expect: 100-continue",
    ];
    let (started, mut inputs) = (Instant::now(), 0u64);
    while started.elapsed() < budget {
        let body = match rng.random_range(0..4) {
            0 => event(0, rng.random_range(0..1000)).1,
            1 => format!("[{}]", event(0, 1).1),
            2 => r#"[{"data":{"validationCode":"x"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent"}]"#
                .into(),
            _ => (0..rng.random_range(0..200)).map(|_| rng.random_range(b' '..=b'~') as char).collect(),
        };
        let mut request =
            format!("{} /events HTTP/1.1\r\nHost: ingest\r\n", ["POST", "OPTIONS", "PUT"][rng.random_range(0..3)]);
        for _ in 0..rng.random_range(0..4) {
            request.push_str(headers[rng.random_range(0..headers.len())]);
            request.push_str("\r\n");
        }
        let length = match rng.random_range(0..4) {
            0 => body.len() + rng.random_range(1..100),
            1 => body.len().saturating_sub(rng.random_range(1..10)),
            _ => body.len(),
        };
        request.push_str(&format!("Content-Length: {length}\r\nConnection: close\r\n\r\n{body}"));
        let mut socket = TcpStream::connect(ingest.http).await?;
        let _ = socket.write_all(request.as_bytes()).await;
        let _ = socket.shutdown().await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        inputs += 1;
    }
    eprintln!("webhook fuzz: {inputs} requests without the token in {budget:?}");
    let accepted = reqwest::Client::new()
        .post(format!("http://{}/events", ingest.http))
        .bearer_auth(TOKEN)
        .body(event(0, 5000).1)
        .send()
        .await?;
    assert_eq!(accepted.status().as_u16(), 200, "the server still takes a real request");
    let reads = read_topic(&bootstrap, &topic, 1, Duration::from_secs(30)).await?;
    assert_eq!(seqs(&reads), [5000], "nothing but the request with the token reached Kafka");
    ingest.stop().await
}
