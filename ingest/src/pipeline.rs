//! The heart of ingest: each event is parsed, sent to Kafka (or the dead-letter topic), and only
//! after Kafka confirmed is its source acknowledged, in arrival order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connaudit_model::TopicMap;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::producer::FutureProducer;
use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::AsyncClient;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::kafka::{self, Record};
use crate::metrics as m;

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mqtt,
    Http,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mqtt => "mqtt",
            Source::Http => "http",
        }
    }
}

/// How to acknowledge an event once Kafka has it.
#[derive(Debug)]
pub enum Ack {
    /// Send the PUBACK, if the connection it arrived on is still the current one.
    Mqtt { publish: Box<Publish>, epoch: u64 },
    /// Tell the waiting HTTP request whether it went to the dead-letter topic.
    Http(oneshot::Sender<Outcome>),
}

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Produced(&'static str),
    DeadLettered,
}

/// One event on its way to Kafka.
#[derive(Debug)]
pub struct Incoming {
    pub payload: Bytes,
    pub topic: Option<String>,
    pub source: Source,
    pub received_at_ms: i64,
    pub ack: Ack,
}

pub struct Pipeline {
    pub producer: FutureProducer,
    pub topic: String,
    pub dlq_topic: String,
    pub topics: TopicMap,
    pub max_in_flight: usize,
    pub mqtt: AsyncClient,
    /// The MQTT connection's current epoch (see `MqttSource::epoch`).
    pub epoch: Arc<AtomicU64>,
}

impl Pipeline {
    /// Runs until both sources close or `stop` fires, then drains what is in flight (bounded by
    /// the caller's deadline). Events still queued stay unacknowledged.
    ///
    /// MQTT events arrive on an unbounded channel so the MQTT event loop never waits for this
    /// loop: it must stay free to send the acks this loop queues (waiting on each other is a
    /// deadlock). The broker bounds that queue: it sends at most the receive maximum
    /// (`max_in_flight`) unacknowledged events. HTTP requests wait on a bounded channel.
    pub async fn run(
        self,
        mut mqtt: mpsc::UnboundedReceiver<Incoming>,
        mut http: mpsc::Receiver<Incoming>,
        stop: CancellationToken,
    ) {
        let mut in_flight = FuturesOrdered::new();
        let mut log_limit = LogLimit::default();
        let (mut mqtt_open, mut http_open) = (true, true);
        let in_flight_gauge = metrics::gauge!(m::IN_FLIGHT);
        let queued_gauge = metrics::gauge!(m::QUEUED);
        loop {
            in_flight_gauge.set(in_flight.len() as f64);
            let room = !stop.is_cancelled() && in_flight.len() < self.max_in_flight;
            let next = tokio::select! {
                biased;
                Some((ack, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.acknowledge(ack, outcome).await;
                    None
                }
                _ = stop.cancelled(), if mqtt_open || http_open => {
                    info!(in_flight = in_flight.len(), "Draining events in flight.");
                    (mqtt_open, http_open) = (false, false);
                    None
                }
                next = mqtt.recv(), if mqtt_open && room => next.or_else(|| { mqtt_open = false; None }),
                next = http.recv(), if http_open && room => next.or_else(|| { http_open = false; None }),
                else => None,
            };
            if let Some(incoming) = next {
                // Raised by the senders when they queue (see `Incoming`), so it is always current.
                queued_gauge.decrement(1.0);
                // A request that already got its 503 is not sent: its sender will send it again.
                if matches!(&incoming.ack, Ack::Http(reply) if reply.is_closed()) {
                    continue;
                }
                let (record, outcome) = self.to_record(&incoming, &mut log_limit);
                let producer = self.producer.clone();
                in_flight.push_back(async move {
                    kafka::deliver(&producer, &record).await;
                    (incoming.ack, outcome)
                });
            }
            if !mqtt_open && !http_open && in_flight.is_empty() {
                in_flight_gauge.set(0.0);
                return;
            }
        }
    }

    fn to_record(&self, incoming: &Incoming, log_limit: &mut LogLimit) -> (Record, Outcome) {
        let mut headers = vec![
            ("received_at", incoming.received_at_ms.to_string()),
            ("source", incoming.source.as_str().to_string()),
        ];
        if let Some(topic) = &incoming.topic {
            headers.push(("mqtt_topic", topic.clone()));
        }
        match connaudit_model::peek(&incoming.payload, incoming.topic.as_deref(), &self.topics) {
            Ok((event, clientid)) => {
                headers.push(("event", event.as_str().to_string()));
                let outcome = Outcome::Produced(event.as_str());
                let record = Record {
                    topic: self.topic.clone(),
                    key: Some(clientid),
                    payload: incoming.payload.clone(),
                    headers,
                };
                (record, outcome)
            }
            Err(error) => {
                m::totals::dead_lettered(error.kind());
                if log_limit.allow(error.kind()) {
                    warn!(kind = error.kind(), error = %error, topic = ?incoming.topic, source = incoming.source.as_str(),
                        "Sending a malformed event to the dead-letter topic (logged once a minute per kind).");
                }
                headers.push(("error", error.to_string()));
                headers.push(("error_kind", error.kind().to_string()));
                let record =
                    Record { topic: self.dlq_topic.clone(), key: None, payload: incoming.payload.clone(), headers };
                (record, Outcome::DeadLettered)
            }
        }
    }

    async fn acknowledge(&self, ack: Ack, outcome: Outcome) {
        if let Outcome::Produced(event) = outcome {
            m::totals::produced(event);
        }
        match ack {
            Ack::Mqtt { publish, epoch } => {
                // After a reconnect the broker resends this event with a fresh packet id
                // meaning; acking the old one could acknowledge a different event.
                if epoch != self.epoch.load(Ordering::SeqCst) {
                    metrics::counter!(m::STALE_ACKS).increment(1);
                    return;
                }
                match self.mqtt.ack(&publish).await {
                    Ok(()) => metrics::counter!(m::ACKED).increment(1),
                    Err(e) => warn!(error = %e, "Could not queue an MQTT acknowledgement; the broker will redeliver."),
                }
            }
            Ack::Http(reply) => {
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Logs each kind of bad input at most once a minute.
#[derive(Default)]
struct LogLimit(HashMap<&'static str, Instant>);

impl LogLimit {
    fn allow(&mut self, kind: &'static str) -> bool {
        let now = Instant::now();
        match self.0.get(kind) {
            Some(last) if now.duration_since(*last) < Duration::from_secs(60) => false,
            _ => {
                self.0.insert(kind, now);
                true
            }
        }
    }
}
