//! The MQTT side: persistent QoS 1 subscriptions with manual acknowledgements, on one or more
//! connections (`--mqtt-connections`, each its own session in the same shared subscriptions).
//! Publishes are handed to the pipeline; the PUBACK is sent by the pipeline, on the connection
//! the event came on, once Kafka confirmed.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, RetainForwardRule, SubAck, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use crate::broker_url::{parse_url, redact};
use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics as m;
use crate::pipeline::{Ack, Incoming, Source};

fn options(cfg: &IngestConfig, index: usize) -> Result<MqttOptions> {
    let broker = parse_url(&cfg.mqtt.url)?;
    let mut opts = MqttOptions::new(cfg.connection_client_id(index), broker.host, broker.port);
    opts.set_keep_alive(Duration::from_secs(cfg.mqtt.keepalive_secs.max(5)))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(cfg.mqtt.session_expiry_secs))
        // The broker sends no more unacknowledged events than we are willing to hold.
        .set_receive_maximum(Some(cfg.max_in_flight as u16))
        // Announced in CONNECT (MQTT 5), so the broker never sends a larger packet, and the
        // limit rumqttc applies to what it reads: without it rumqttc's 10 KiB default drops
        // a larger event and reconnects, and the broker redelivers it forever.
        .set_max_packet_size(Some(cfg.mqtt.max_packet_size))
        .set_manual_acks(true);
    let username = cfg.mqtt.username.clone().or(broker.username);
    let password = cfg.mqtt.password.clone().or(broker.password);
    if let Some(user) = username {
        opts.set_credentials(user, password.unwrap_or_default());
    }
    if broker.tls {
        opts.set_transport(Transport::Tls(tls_config(cfg)?));
    }
    Ok(opts)
}

fn tls_config(cfg: &IngestConfig) -> Result<TlsConfiguration> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| Error::Tls { what, path: path.display().to_string(), source })
    };
    let ca_path = cfg
        .mqtt
        .ca_file
        .as_deref()
        .ok_or_else(|| Error::Config("mqtts:// needs --mqtt-ca-file with the broker's CA (PEM)".into()))?;
    let client_auth = match (&cfg.mqtt.client_cert, &cfg.mqtt.client_key) {
        (Some(cert), Some(key)) => Some((read("client certificate", cert)?, read("client key", key)?)),
        _ => None,
    };
    Ok(TlsConfiguration::Simple { ca: read("CA file", ca_path)?, alpn: None, client_auth })
}

/// An MQTT connection of the process: the pipeline acknowledges on `client` what came on it.
pub struct Connection {
    pub client: AsyncClient,
    /// Bumped at every new connection; acks for publishes of an older one are not sent.
    pub epoch: Arc<AtomicU64>,
}

/// The MQTT connections; the futures `start` returns run them. `disconnect` ends each after
/// the pipeline has sent its acks.
pub struct MqttSource {
    pub connections: Vec<Connection>,
    /// QoS 0 events handed to the pipeline and not yet taken, over every connection.
    pub qos0_queued: Arc<AtomicUsize>,
}

/// A connection's event loop.
pub type Run = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

pub fn start(
    cfg: &IngestConfig,
    tx: mpsc::UnboundedSender<Incoming>,
    health: Health,
    stop_receiving: CancellationToken,
) -> Result<(MqttSource, Vec<Run>)> {
    health.expect_mqtt(cfg.mqtt.connections);
    let qos0_queued = Arc::new(AtomicUsize::new(0));
    let (mut connections, mut runs) = (Vec::new(), Vec::new());
    for index in 0..cfg.mqtt.connections {
        // Room for an ack per event the broker may have in flight, plus subscribes and pings.
        let (client, eventloop) = AsyncClient::new(options(cfg, index)?, cfg.max_in_flight * 2 + 64);
        let epoch = Arc::new(AtomicU64::new(0));
        let run = Loop {
            index,
            client: client.clone(),
            topics: cfg.mqtt.topics.clone(),
            url: redact(&cfg.mqtt.url),
            tx: tx.clone(),
            health: health.clone(),
            epoch: epoch.clone(),
            stop_receiving: stop_receiving.clone(),
            qos0_queued: qos0_queued.clone(),
            qos0_limit: cfg.max_in_flight,
            qos0_warned: std::sync::atomic::AtomicBool::new(false),
            received: metrics::counter!(m::MQTT_RECEIVED, "connection" => index.to_string()),
        };
        connections.push(Connection { client, epoch });
        runs.push(Box::pin(run.run(eventloop)) as Run);
    }
    Ok((MqttSource { connections, qos0_queued }, runs))
}

struct Loop {
    /// Which of the process's connections (0 for the first).
    index: usize,
    client: AsyncClient,
    topics: Vec<String>,
    url: String,
    tx: mpsc::UnboundedSender<Incoming>,
    health: Health,
    epoch: Arc<AtomicU64>,
    stop_receiving: CancellationToken,
    qos0_queued: Arc<AtomicUsize>,
    /// QoS 0 events are outside the receive maximum: beyond this many queued, drop them.
    qos0_limit: usize,
    qos0_warned: std::sync::atomic::AtomicBool,
    received: metrics::Counter,
}

impl Loop {
    /// The readiness problem key of this connection's subscriptions.
    fn subscription(&self) -> String {
        match self.index {
            0 => "mqtt subscription".into(),
            i => format!("mqtt subscription (connection {i})"),
        }
    }

    async fn run(self, mut eventloop: EventLoop) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
                    self.health.set_mqtt(self.index, true);
                    let resumed = if ack.session_present { "true" } else { "false" };
                    metrics::counter!(m::MQTT_SESSIONS, "session_present" => resumed).increment(1);
                    info!(url = %self.url, connection = self.index, session_present = ack.session_present, epoch, "Connected to the MQTT broker.");
                    self.subscribe();
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.forward(publish),
                Ok(Event::Incoming(Packet::SubAck(ack))) => self.subscribed(&ack),
                Ok(Event::Incoming(Packet::Disconnect(d))) => {
                    self.health.set_mqtt(self.index, false);
                    warn!(connection = self.index, reason = ?d.reason_code, "The MQTT broker closed the connection.");
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    self.health.set_mqtt(self.index, false);
                    // Closing a socket with unread data makes the kernel send a reset, and the
                    // broker may then lose the acks just sent (seen in tests as a redelivered
                    // event). Read until the broker closes its side first.
                    let closed = async { while eventloop.poll().await.is_ok() {} };
                    let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
                    info!(connection = self.index, "Disconnected from the MQTT broker.");
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    self.health.set_mqtt(self.index, false);
                    metrics::counter!(m::MQTT_CONNECTION_ERRORS).increment(1);
                    warn!(url = %self.url, connection = self.index, error = %e, retry_in = ?backoff, "MQTT connection failed; retrying.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Subscribes on every connection, resumed session or not: the session may lack them (a
    /// changed `--mqtt-topic`, a crash between CONNACK and SUBACK). Not ready until granted.
    fn subscribe(&self) {
        self.health.set_problem(&self.subscription(), Some("waiting for the broker's SUBACK".into()));
        let filters = self.topics.iter().map(|topic| Filter {
            // Retained messages only on a new subscription, never again on each reconnect.
            retain_forward_rule: RetainForwardRule::OnNewSubscribe,
            ..Filter::new(topic.clone(), QoS::AtLeastOnce)
        });
        if let Err(e) = self.client.try_subscribe_many(filters) {
            error!(error = %e, "Could not queue the subscriptions.");
        }
    }

    fn subscribed(&self, ack: &SubAck) {
        let refused: Vec<String> = self
            .topics
            .iter()
            .zip(&ack.return_codes)
            .filter(|(_, code)| !matches!(code, SubscribeReasonCode::Success(_)))
            .map(|(topic, code)| format!("{topic} ({code:?})"))
            .collect();
        if refused.is_empty() {
            info!(topics = ?self.topics, connection = self.index, "Subscribed.");
            self.health.set_problem(&self.subscription(), None);
            return;
        }
        for topic in &refused {
            metrics::counter!(m::SUBSCRIBE_REFUSED, "topic" => topic.clone()).increment(1);
        }
        let problem = format!("the broker refused the subscription to {}", refused.join(", "));
        error!(refused = ?refused, "{problem}: check the broker's ACL for this client and the topic filter.");
        self.health.set_problem(&self.subscription(), Some(problem));
    }

    fn forward(&self, publish: Publish) {
        if self.stop_receiving.is_cancelled() {
            // Not acknowledged: the broker redelivers it to the next session.
            return;
        }
        let qos0 = publish.qos == QoS::AtMostOnce;
        if qos0 && self.qos0_queued.load(Ordering::Relaxed) >= self.qos0_limit {
            // QoS 0 is outside the receive maximum and cannot be redelivered: bound it.
            metrics::counter!(m::DROPPED, "reason" => "qos0_overflow").increment(1);
            if !self.qos0_warned.swap(true, Ordering::Relaxed) {
                warn!(limit = self.qos0_limit, "QoS 0 events arrive faster than Kafka confirms; dropping those beyond the limit (counted in connaudit_events_dropped_total). Publish events at QoS 1.");
            }
            return;
        }
        if qos0 {
            self.qos0_queued.fetch_add(1, Ordering::Relaxed);
        }
        m::totals::received("mqtt");
        self.received.increment(1);
        let incoming = Incoming {
            format: None,
            payload: publish.payload.clone(),
            topic: Some(String::from_utf8_lossy(&publish.topic).into_owned()),
            source: Source::Mqtt,
            received_at_ms: crate::now_ms(),
            ack: Ack::Mqtt {
                publish: Box::new(publish),
                connection: self.index,
                epoch: self.epoch.load(Ordering::SeqCst),
            },
            qos0,
        };
        // Never waits: the broker's flow control (the receive maximum) is the backpressure.
        metrics::gauge!(m::QUEUED).increment(1.0);
        if self.tx.send(incoming).is_err() {
            metrics::gauge!(m::QUEUED).decrement(1.0);
            if qos0 {
                self.qos0_queued.fetch_sub(1, Ordering::Relaxed);
            }
            warn!("The pipeline is gone; an event stays unacknowledged for redelivery.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_credentials_and_defaults() {
        let u = parse_url("mqtt://dev%40acme:p%2Fw@broker.local").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "broker.local", 1883));
        assert_eq!((u.username.as_deref(), u.password.as_deref()), (Some("dev@acme"), Some("p/w")));
        let u = parse_url("mqtts://[::1]:9999").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.username), (true, "::1", 9999, None));
        assert_eq!(parse_url("mqtts://h").unwrap().port, 8883);
        assert!(parse_url("ws://h").unwrap_err().to_string().contains("not mqtt://"));
        assert_eq!(redact("mqtt://u:secret@h:1"), "mqtt://u:***@h:1");
        for bad in ["mqtt://u:secret@h:99999", "mqtt://u:secret@[h:1", "u:secret@h:1"] {
            let err = parse_url(bad).unwrap_err().to_string();
            assert!(!err.contains("secret"), "{err}");
            assert!(err.contains("***@"), "{err}");
        }
    }
}
