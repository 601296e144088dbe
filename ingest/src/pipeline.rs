//! The heart of ingest: each event is parsed, sent to Kafka (or the dead-letter topic), and only
//! after Kafka confirmed is its source acknowledged, in arrival order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use connaudit_kafka::{header, EventHeaders};
use connaudit_model::{Broker, SourceFormats, TopicMap};
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::producer::FutureProducer;
use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::health::Health;
use crate::kafka::{self, Delivered, Fatal, Record};
use crate::metrics as m;
use crate::mqtt::Connection;
use crate::redelivery::Redelivery;

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
    /// Send the PUBACK on the connection it arrived on (`MqttSource::connections`), if that
    /// is still in the session it arrived in (the same epoch).
    Mqtt { publish: Box<Publish>, connection: usize, epoch: u64 },
    /// Tell the waiting HTTP request whether it went to the dead-letter topic.
    Http(oneshot::Sender<Outcome>),
}

/// What happened to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Produced(&'static str),
    DeadLettered,
    /// A redelivery (DUP) of an event Kafka already has from this process: acknowledged only.
    Redelivered,
    /// Neither the topic nor the dead-letter topic took it (counted, logged).
    Dropped,
}

/// One event on its way to Kafka.
#[derive(Debug)]
pub struct Incoming {
    pub payload: Bytes,
    pub topic: Option<String>,
    pub source: Source,
    pub received_at_ms: i64,
    pub ack: Ack,
    /// Arrived at QoS 0: outside the broker's flow control, counted in `Pipeline::qos0_queued`.
    pub qos0: bool,
    /// The broker the sender said it is (`POST /events?source_format=`); else the topic's.
    pub format: Option<Broker>,
}

pub struct Pipeline {
    /// Shared by the deliveries in flight (one reference count per event, no copies).
    pub sender: Arc<Sender>,
    pub topic: String,
    pub topics: TopicMap,
    /// `--source-format`: which broker's events a topic carries, passed on as a header.
    pub formats: SourceFormats,
    /// Events in flight at most: `--max-in-flight` per MQTT connection.
    pub max_in_flight: usize,
    pub mqtt: Vec<Connection>,
    /// QoS 0 events received and not yet taken by this loop (bounded by the MQTT side).
    pub qos0_queued: Arc<AtomicUsize>,
    /// Events waiting and none confirmed for this long: the pipeline is stalled.
    pub stall_timeout: Duration,
    /// The last events Kafka confirmed, to recognise the broker's redeliveries of them.
    pub redelivery: Redelivery,
}

/// Sends a record, and dead-letters what Kafka refuses for good.
pub struct Sender {
    pub producer: FutureProducer,
    pub dlq_topic: String,
    /// A refused payload is cut to this many bytes in the dead-letter topic.
    pub dlq_payload_limit: usize,
    pub health: Health,
}

impl Sender {
    async fn send(&self, record: Record, outcome: Outcome) -> Result<Outcome, Fatal> {
        let why = match kafka::deliver(&self.producer, &record, &self.health).await? {
            Delivered::Confirmed => return Ok(outcome),
            Delivered::Refused(why) => why,
        };
        if outcome == Outcome::DeadLettered {
            metrics::counter!(m::DROPPED, "reason" => "refused_by_kafka").increment(1);
            error!(topic = %record.topic, error = %why, bytes = record.payload.len(),
                "Kafka refused a dead letter too; the event is dropped.");
            return Ok(Outcome::Dropped);
        }
        warn!(topic = %record.topic, error = %why, bytes = record.payload.len(), "Kafka refused an event; dead-lettering it.");
        m::totals::dead_lettered("kafka_refused");
        let dead = self.refused(record, &why);
        Box::pin(self.send(dead, Outcome::DeadLettered)).await
    }

    /// The dead letter of a record Kafka refused: its reason, its payload cut to the limit.
    fn refused(&self, record: Record, why: &str) -> Record {
        let mut headers: Vec<_> = record.headers.into_iter().filter(|(k, _)| *k != header::EVENT).collect();
        headers.push((header::ERROR, format!("Kafka refused the event: {why}")));
        headers.push((header::ERROR_KIND, "kafka_refused".to_string()));
        let mut payload = record.payload;
        if payload.len() > self.dlq_payload_limit {
            headers.push((header::TRUNCATED_FROM, payload.len().to_string()));
            payload = payload.slice(..self.dlq_payload_limit);
        }
        Record { topic: self.dlq_topic.clone(), key: None, payload, headers }
    }
}

impl Pipeline {
    /// Runs until both sources close or `stop` fires, then drains what is in flight (bounded by
    /// the caller's deadline). Events still queued stay unacknowledged.
    ///
    /// MQTT events arrive on an unbounded channel so the MQTT event loop never waits for this
    /// loop: it must stay free to send the acks this loop queues (waiting on each other is a
    /// deadlock). The broker bounds that queue: it sends at most the receive maximum
    /// (`--max-in-flight`) unacknowledged events per connection. HTTP requests wait on a bounded channel.
    pub async fn run(
        self,
        mut mqtt: mpsc::UnboundedReceiver<Incoming>,
        mut http: mpsc::Receiver<Incoming>,
        stop: CancellationToken,
    ) -> Result<(), Fatal> {
        let mut in_flight: FuturesOrdered<Pending> = FuturesOrdered::new();
        let mut log_limit = LogLimit::default();
        let (mut mqtt_open, mut http_open) = (true, true);
        let in_flight_gauge = metrics::gauge!(m::IN_FLIGHT);
        let queued_gauge = metrics::gauge!(m::QUEUED);
        let mut last_progress = Instant::now();
        let mut stall_check = tokio::time::interval(Duration::from_secs(1));
        stall_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            in_flight_gauge.set(in_flight.len() as f64);
            let room = !stop.is_cancelled() && in_flight.len() < self.max_in_flight;
            let next = tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let (ack, outcome) = done?;
                    last_progress = Instant::now();
                    self.acknowledge(ack, outcome).await;
                    None
                }
                _ = stall_check.tick() => {
                    self.check_stall(in_flight.len(), last_progress);
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
                if incoming.qos0 {
                    self.qos0_queued.fetch_sub(1, Ordering::Relaxed);
                }
                // A request that already got its 503 is not sent: its sender will send it again.
                if matches!(&incoming.ack, Ack::Http(reply) if reply.is_closed()) {
                    continue;
                }
                if in_flight.is_empty() {
                    last_progress = Instant::now();
                }
                if let Ack::Mqtt { publish, .. } = &incoming.ack {
                    if publish.dup && self.redelivery.already_delivered(&publish.topic, &publish.payload) {
                        // Acknowledged in its turn, like every other event.
                        in_flight
                            .push_back(Box::pin(async move { Ok::<_, Fatal>((incoming.ack, Outcome::Redelivered)) })
                                as Pending);
                        continue;
                    }
                }
                let (record, outcome) = self.to_record(&incoming, &mut log_limit);
                let sender = self.sender.clone();
                in_flight.push_back(Box::pin(async move {
                    let outcome = sender.send(record, outcome).await?;
                    Ok::<_, Fatal>((incoming.ack, outcome))
                }) as Pending);
            }
            if !mqtt_open && !http_open && in_flight.is_empty() {
                in_flight_gauge.set(0.0);
                return Ok(());
            }
        }
    }

    /// Events waiting and none confirmed for `stall_timeout`: not ready, and said once.
    fn check_stall(&self, in_flight: usize, last_progress: Instant) {
        let stalled = in_flight > 0 && last_progress.elapsed() >= self.stall_timeout;
        if stalled != self.sender.health.stalled() {
            match stalled {
                true => error!(in_flight, waited = ?last_progress.elapsed(),
                    "Ingest is stalled: events wait and Kafka confirmed none; not ready until it moves."),
                false => info!("Ingest moves again."),
            }
            self.sender.health.set_stalled(stalled);
            metrics::gauge!(m::STALLED).set(if stalled { 1.0 } else { 0.0 });
        }
    }

    fn to_record(&self, incoming: &Incoming, log_limit: &mut LogLimit) -> (Record, Outcome) {
        let format = incoming.format.or_else(|| incoming.topic.as_deref().and_then(|t| self.formats.lookup(t)));
        let mut written = EventHeaders {
            received_at_ms: Some(incoming.received_at_ms),
            source: Some(incoming.source.as_str()),
            mqtt_topic: incoming.topic.as_deref(),
            source_format: format.map(|f| f.as_str()),
            event: None,
        };
        match connaudit_model::peek(&incoming.payload, incoming.topic.as_deref(), &self.topics) {
            Ok((event, clientid)) => {
                written.event = Some(event.as_str());
                let headers = written.pairs();
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
                let mut headers = written.pairs();
                headers.push((header::ERROR, error.to_string()));
                headers.push((header::ERROR_KIND, error.kind().to_string()));
                let record = Record {
                    topic: self.sender.dlq_topic.clone(),
                    key: None,
                    payload: incoming.payload.clone(),
                    headers,
                };
                (record, Outcome::DeadLettered)
            }
        }
    }

    async fn acknowledge(&self, ack: Ack, outcome: Outcome) {
        match outcome {
            Outcome::Produced(event) => m::totals::produced(event),
            Outcome::Redelivered => metrics::counter!(m::REDELIVERED).increment(1),
            _ => {}
        }
        match ack {
            Ack::Mqtt { publish, connection, epoch } => {
                // After a reconnect the broker resends this event with a fresh packet id
                // meaning; acking the old one could acknowledge a different event.
                // Kafka has it: if this acknowledgement never reaches the broker (the connection
                // is gone, or goes before the ack is written), the copy it redelivers is skipped.
                if matches!(outcome, Outcome::Produced(_) | Outcome::DeadLettered) && publish.qos != QoS::AtMostOnce {
                    self.redelivery.delivered(&publish.topic, &publish.payload);
                }
                let connection = &self.mqtt[connection];
                if epoch != connection.epoch.load(Ordering::SeqCst) {
                    metrics::counter!(m::STALE_ACKS).increment(1);
                    return;
                }
                match connection.client.ack(&publish).await {
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

/// An event on its way: to Kafka, or straight to its acknowledgement.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Ack, Outcome), Fatal>> + Send>>;

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
