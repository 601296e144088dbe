//! Where simulated events go: an MQTT broker (QoS 1, as a republish rule sends them) or
//! ingest's HTTP endpoint (as EMQX's HTTP action posts them, in arrays).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use url::Url;

use crate::error::{Error, Result};
use crate::story::Emitted;

pub enum Sink {
    Mqtt { client: AsyncClient, acked: Arc<AtomicU64>, sent: u64 },
    Http { client: reqwest::Client, url: String, pending: Vec<String>, posted: u64 },
}

impl Sink {
    /// Connects to `mqtt://[user:pass@]host:port`.
    pub async fn mqtt(url: &str, client_id: &str) -> Result<Sink> {
        let bad = |why: &str| Error::Usage(format!("--mqtt-url `{url}` {why}; write it like mqtt://127.0.0.1:1883"));
        let parsed = Url::parse(url).map_err(|_| bad("is not a URL"))?;
        if parsed.scheme() != "mqtt" {
            return Err(bad("must start with mqtt://"));
        }
        let host = parsed.host_str().ok_or_else(|| bad("has no host"))?.to_string();
        let mut options = MqttOptions::new(client_id, host, parsed.port().unwrap_or(1883));
        options.set_keep_alive(Duration::from_secs(30)).set_inflight(200).set_clean_session(true);
        if !parsed.username().is_empty() {
            options.set_credentials(parsed.username(), parsed.password().unwrap_or(""));
        }
        let (client, mut events) = AsyncClient::new(options, 1000);
        let acked = Arc::new(AtomicU64::new(0));
        let count = acked.clone();
        // Wait for the CONNACK so a wrong address fails here, not later.
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut ready = Some(ready_tx);
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(Err(e.to_string()));
                            break;
                        }
                        tracing::warn!(error = %e, "The MQTT connection failed; reconnecting.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(Sink::Mqtt { client, acked, sent: 0 }),
            Ok(Ok(Err(e))) => Err(Error::Connect(format!("cannot connect to {url}: {e}"))),
            _ => Err(Error::Connect(format!("no CONNACK from {url} within 10 s"))),
        }
    }

    /// Posts to ingest's `/events` (`http://host:port/events`).
    pub fn http(url: &str) -> Result<Sink> {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(Error::Usage(format!("--http-url `{url}` must be http(s)://HOST:PORT/events")));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Connect(format!("cannot build an HTTP client: {e}")))?;
        Ok(Sink::Http { client, url: url.to_string(), pending: Vec::new(), posted: 0 })
    }

    pub async fn send(&mut self, e: Emitted) -> Result<()> {
        match self {
            Sink::Mqtt { client, sent, .. } => {
                client
                    .publish(e.topic, QoS::AtLeastOnce, false, e.payload.to_string())
                    .await
                    .map_err(|err| Error::Connect(format!("cannot publish: {err}")))?;
                *sent += 1;
                Ok(())
            }
            // VerneMQ's webhook names its hook in a header: one event per request.
            Sink::Http { .. } if e.topic.starts_with("vernemq/") => {
                self.flush().await?;
                let hook = e.topic.rsplit('/').next().unwrap_or_default();
                self.post(e.payload.to_string(), 1, Some(hook)).await
            }
            Sink::Http { pending, .. } => {
                pending.push(e.payload.to_string());
                if pending.len() >= 100 {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Events the destination has confirmed so far.
    pub fn confirmed(&self) -> u64 {
        match self {
            Sink::Mqtt { acked, .. } => acked.load(Ordering::Relaxed),
            Sink::Http { posted, .. } => *posted,
        }
    }

    /// Sends what is buffered and waits for every confirmation (up to `wait`).
    pub async fn finish(&mut self, wait: Duration) -> Result<()> {
        self.flush().await?;
        if let Sink::Mqtt { client, acked, sent, .. } = self {
            let deadline = tokio::time::Instant::now() + wait;
            while acked.load(Ordering::Relaxed) < *sent {
                if tokio::time::Instant::now() > deadline {
                    return Err(Error::Connect(format!(
                        "the broker confirmed {} of {} events within {wait:?}",
                        acked.load(Ordering::Relaxed),
                        sent
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = client.disconnect().await;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let Sink::Http { pending, .. } = self else { return Ok(()) };
        if pending.is_empty() {
            return Ok(());
        }
        let (body, n) = (format!("[{}]", pending.join(",")), pending.len() as u64);
        pending.clear();
        self.post(body, n, None).await
    }

    /// Posts one body of `n` events (with VerneMQ's `vernemq-hook` header, for its hooks).
    async fn post(&mut self, body: String, n: u64, hook: Option<&str>) -> Result<()> {
        let Sink::Http { client, url, posted, .. } = self else { return Ok(()) };
        // Ingest answers 503 while Kafka is away; the events are not lost, so send them again.
        for attempt in 0..30 {
            let mut request = client.post(url.as_str()).header("content-type", "application/json");
            if let Some(hook) = hook {
                request = request.header("vernemq-hook", hook);
            }
            match request.body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    *posted += n;
                    return Ok(());
                }
                Ok(r) if r.status().is_client_error() => {
                    return Err(Error::Connect(format!("{url} refused the events: HTTP {}", r.status())));
                }
                Ok(r) => tracing::warn!(status = %r.status(), attempt, "Ingest is not ready; retrying."),
                Err(e) => tracing::warn!(error = %e, attempt, "Cannot post; retrying."),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(Error::Connect(format!("{url} did not take the events within 30 attempts")))
    }
}
