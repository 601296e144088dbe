//! The consumer loop: records join their partition's open batch; a batch is written when it is
//! full, old or idle, in the background while the loop reads on (one write at a time);
//! offsets are committed only after the warehouse holds the batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use connaudit_kafka::EventHeaders;
use connaudit_model::TopicMap;
use foldhash::HashMap;
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::background::{self, Background, Written};
use crate::config::{BatchConfig, TransformConfig};
use crate::dedup::Window;
use crate::error::{Error, Result};
use crate::http::Health;
use crate::kafka::{self, Consumer_, GroupContext, Refused};
use crate::metrics::{self as m, totals};
use crate::regions::RegionMap;
use crate::row::{Origin, Row};
use crate::writer::{BatchWriter, Span};

mod refusals;

/// What the loop knows about one assigned partition.
struct Slot {
    /// Offsets up to here are in every table already (their Delta `txn` versions).
    done: i64,
    open: Option<Open>,
    /// The fingerprints kept at the last `--dedup-window` offsets, open batch included.
    window: Window,
    /// Whether Kafka's end offset was compared with `done` since the assignment (on the first
    /// record at or below it), and whether it was below: the topic was re-created.
    checked: bool,
    went_back: bool,
}

struct Open {
    first: i64,
    last: i64,
    rows: Vec<Row>,
    dead: usize,
    started: Instant,
    /// When the loop's tick first saw `last` as the newest offset: the batch is idle once
    /// that is `idle_secs` ago (the clock is read per tick, not per record).
    touched: Instant,
    /// The newest offset the tick has seen.
    seen: i64,
}

pub struct Service {
    pub batch: BatchConfig,
    /// Offsets of a partition a redelivered copy is looked for in.
    pub dedup_window: u64,
    pub topic: String,
    pub dlq_topic: String,
    pub alerts_topic: String,
    pub consumer: Arc<Consumer_>,
    pub context: GroupContext,
    pub producer: FutureProducer,
    writes: Background,
    pub regions: RegionMap,
    pub topics: TopicMap,
    /// Attributes derived from usernames (`--derive-attribute`).
    derived: crate::derive::Derived,
    pub health: Health,
    /// Fires when retrying a failed write should stop (the shutdown deadline).
    pub give_up: CancellationToken,
    slots: HashMap<i32, Slot>,
    /// `m::BUFFERED`, looked up once: it moves with every record.
    buffered: metrics::Gauge,
}

impl Service {
    pub fn new(cfg: &TransformConfig, parts: Parts) -> Result<Self> {
        let Parts { consumer, context, producer, writer, regions, health, give_up } = parts;
        Ok(Service {
            batch: cfg.batch.clone(),
            dedup_window: cfg.dedup_window,
            topic: cfg.kafka.topic.clone(),
            dlq_topic: cfg.kafka.dlq_topic.clone(),
            alerts_topic: cfg.kafka.alerts_topic.clone(),
            consumer,
            context,
            producer,
            writes: Background::new(writer, health.clone(), give_up.clone())?,
            regions,
            topics: TopicMap::default(),
            derived: crate::derive::Derived::new(&cfg.derive_attributes)?,
            health,
            give_up,
            slots: HashMap::default(),
            buffered: metrics::gauge!(m::BUFFERED),
        })
    }

    /// Runs until `shutdown`, then writes the open batches (within the give-up deadline).
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let consumer = self.consumer.clone();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            // A rebalance runs inside `recv`; `on_message` and `roll_due` drop what it revoked.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.roll_due().await?,
                msg = consumer.recv() => match msg {
                    Ok(msg) => self.on_message(&msg).await?,
                    Err(e) => {
                        metrics::counter!(m::KAFKA_ERRORS, "op" => "consume").increment(1);
                        warn!(error = %e, "Kafka consume error; retrying.");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
        self.drop_revoked();
        let open: Vec<i32> = self.slots.iter().filter(|(_, s)| s.open.is_some()).map(|(p, _)| *p).collect();
        for p in open {
            self.flush(p, "shutdown").await?;
        }
        while self.writes.busy() {
            self.advance(true).await?;
        }
        Ok(())
    }

    fn drop_revoked(&mut self) {
        for p in self.context.take_revoked() {
            self.writes.drop_queued(p);
            self.health.set_went_back(p, false);
            if let Some(slot) = self.slots.remove(&p) {
                if let Some(open) = slot.open {
                    self.buffered.decrement(open.rows.len() as f64);
                }
            }
        }
    }

    async fn on_message(&mut self, msg: &BorrowedMessage<'_>) -> Result<()> {
        // A finished write frees the writer for the next queued batch now, not at the tick.
        self.advance(false).await?;
        self.drop_revoked();
        let (p, offset) = (msg.partition(), msg.offset());
        if !self.slots.contains_key(&p) {
            let owned = self.consumer.assignment().is_ok_and(|a| a.find_partition(&self.topic, p).is_some());
            if !owned {
                return Ok(());
            }
            let (done, window) = self.position(p).await?;
            if done >= 0 && offset > done + 1 {
                // Kafka resumed past what the warehouse holds: a committed offset ahead of the
                // Delta log (never written by connaudit), or a broker that lost the group's
                // position. The records between are not in the warehouse; say so loudly.
                metrics::counter!(m::POSITION_GAPS).increment((offset - done - 1) as u64);
                error!(partition = p, warehouse = done, kafka = offset, "Kafka resumed after offsets the warehouse does not hold; those records are missing. Reset the group's offset to the warehouse position + 1.");
            }
            self.slots.insert(p, Slot { done, open: None, window, checked: false, went_back: false });
        }
        let slot = self.slots.get_mut(&p).expect("slot just ensured");
        if offset <= slot.done {
            if !slot.checked {
                self.check_went_back(msg).await;
            }
            if self.slots[&p].went_back {
                metrics::counter!(m::OFFSETS_WENT_BACK).increment(1);
            }
            totals::add("skipped", 1);
            return Ok(());
        }
        let row = self.parse(msg);
        let slot = self.slots.get_mut(&p).expect("slot exists");
        let open = slot.open.get_or_insert_with(|| {
            let now = Instant::now();
            Open { first: offset, last: offset, rows: Vec::new(), dead: 0, started: now, touched: now, seen: offset }
        });
        open.last = offset;
        match row {
            Ok(row) if row.fingerprint.is_some_and(|fp| slot.window.is_copy(offset, fp)) => {
                // A redelivered copy: its offset moves the position, it adds no row.
                totals::add("duplicate", 1);
            }
            Ok(row) => {
                open.rows.push(row);
                self.buffered.increment(1.0);
            }
            Err(e) => {
                open.dead += 1;
                self.dead_letter(msg, &e).await;
            }
        }
        let open = self.slots[&p].open.as_ref().expect("open batch");
        if open.rows.len() + open.dead >= self.batch.max_events {
            self.flush(p, "size").await?;
        }
        Ok(())
    }

    /// Where a newly assigned partition stands in the warehouse, read from the tables, and the
    /// fingerprints kept in the window before it (read from `events`).
    async fn position(&mut self, p: i32) -> Result<(i64, Window)> {
        let mut backoff = Duration::from_millis(200);
        loop {
            // The batch being written may be this partition's (revoked and assigned again).
            if let Some(written) = self.writes.settle().await? {
                self.finish(written).await;
            }
            let (dedup_window, writer) = (self.dedup_window, self.writes.writer());
            let read = async {
                let done = writer.position(p).await?;
                let from = Window::start(dedup_window, done + 1);
                let kept = if dedup_window == 0 { Vec::new() } else { writer.fingerprints(p, from, done).await? };
                Ok::<_, Error>((done, kept))
            };
            match read.await {
                Ok((done, kept)) => {
                    self.health.set_warehouse(true);
                    let mut window = Window::new(self.dedup_window);
                    debug!(partition = p, position = done, fingerprints = kept.len(), "Partition assigned.");
                    window.seed(kept);
                    return Ok((done, window));
                }
                Err(e) => self.failed("read a partition's position", e, &mut backoff).await?,
            }
        }
    }

    fn parse(&self, msg: &BorrowedMessage<'_>) -> Result<Row, connaudit_model::Error> {
        let written = EventHeaders::read(msg.headers().into_iter().flat_map(|hs| hs.iter()).map(|h| (h.key, h.value)));
        let origin = Origin {
            partition: msg.partition(),
            offset: msg.offset(),
            mqtt_topic: written.mqtt_topic,
            event: written.event.and_then(|e| e.parse().ok()),
            fallback_ts: written.received_at_ms.or(msg.timestamp().to_millis()),
            source_format: written.source_format,
        };
        let mut row = Row::parse(msg.payload().unwrap_or_default(), &origin, &self.topics, &self.regions)?;
        self.derived.apply(&mut row);
        Ok(row)
    }

    async fn roll_due(&mut self) -> Result<()> {
        self.advance(false).await?;
        // A rebalance may have run inside the last poll: never write a partition we lost.
        self.drop_revoked();
        let (age, idle) = (Duration::from_secs(self.batch.max_age_secs), Duration::from_secs(self.batch.idle_secs));
        let now = Instant::now();
        let due: Vec<(i32, &'static str)> = self
            .slots
            .iter_mut()
            .filter_map(|(p, s)| {
                let o = s.open.as_mut()?;
                if o.last != o.seen {
                    (o.seen, o.touched) = (o.last, now);
                }
                if now.duration_since(o.started) >= age {
                    Some((*p, "age"))
                } else {
                    (now.duration_since(o.touched) >= idle).then_some((*p, "idle"))
                }
            })
            .collect();
        for (p, trigger) in due {
            self.flush(p, trigger).await?;
        }
        Ok(())
    }

    /// Queues a partition's open batch for writing; waits only while the partition's previous
    /// batch still waits for its turn (at most one queued per partition).
    async fn flush(&mut self, p: i32, trigger: &'static str) -> Result<()> {
        let Some(open) = self.slots.get_mut(&p).and_then(|s| s.open.take()) else { return Ok(()) };
        self.buffered.decrement(open.rows.len() as f64);
        let waited = Instant::now();
        while self.writes.has_queued(p) {
            self.advance(true).await?;
        }
        let span = Span { partition: p, first: open.first, last: open.last };
        debug!(
            partition = p,
            rows = open.rows.len(),
            trigger,
            waited_ms = waited.elapsed().as_millis() as u64,
            "Batch cut."
        );
        self.writes.push(span, open.rows, trigger);
        self.advance(false).await
    }

    /// Moves the background writes on (see `Background::advance`) and finishes a collected one.
    async fn advance(&mut self, wait: bool) -> Result<()> {
        if let Some(written) = self.writes.advance(wait).await? {
            self.finish(written).await;
        }
        Ok(())
    }

    /// A batch the warehouse now holds: publishes its alerts and commits its offsets.
    async fn finish(&mut self, written: Written) {
        let Written { span, rows, trigger, started, committed } = written;
        let finishing = Instant::now();
        // Sent together (in order, one producer), then awaited: each would otherwise wait a
        // Kafka round trip while the loop stands still.
        let bodies: Vec<Vec<u8>> =
            committed.alerts.iter().map(|a| serde_json::to_vec(a).expect("alerts serialize")).collect();
        let headers: Vec<[(&str, &str); 1]> =
            committed.alerts.iter().map(|a| [(connaudit_kafka::header::ALERT_KIND, a.kind)]).collect();
        let sends = committed.alerts.iter().zip(&bodies).zip(&headers).map(|((alert, body), headers)| {
            let key = alert.clientid.as_deref().unwrap_or(&alert.region);
            kafka::deliver(&self.producer, &self.health, &self.alerts_topic, key, body, headers)
        });
        for refused in futures::future::join_all(sends).await.into_iter().filter_map(Result::err) {
            let Refused::ForGood(why) = refused;
            error!(topic = %self.alerts_topic, error = %why, "Kafka refused an alert; the alerts table holds it.");
        }
        for alert in &committed.alerts {
            metrics::counter!(m::ALERTS, "kind" => alert.kind, "region" => alert.region.clone()).increment(1);
            warn!(kind = alert.kind, region = %alert.region, clientid = ?alert.clientid, count = alert.count, "Alert raised.");
        }
        // A partition revoked while its batch was written: the warehouse holds the batch (the
        // new owner reads its position there); Kafka's offset is the new owner's to move.
        self.drop_revoked();
        if let Some(slot) = self.slots.get_mut(&span.partition) {
            kafka::commit(&self.consumer, &self.topic, span.partition, span.last).await;
            slot.done = span.last;
        }
        totals::add("written", rows as u64);
        metrics::counter!(m::BATCHES, "trigger" => trigger).increment(1);
        metrics::histogram!(m::BATCH_SECONDS).record(started.elapsed().as_secs_f64());
        debug!(
            partition = span.partition,
            first = span.first,
            last = span.last,
            rows,
            files = committed.files,
            trigger,
            // What publishing its alerts and committing its offsets held the loop for.
            finish_ms = finishing.elapsed().as_millis() as u64,
            "Batch written."
        );
    }

    /// Reports a failed warehouse operation and waits before the next attempt; gives up at
    /// the shutdown deadline.
    async fn failed(&self, what: &str, e: Error, backoff: &mut Duration) -> Result<()> {
        background::pause(what, e, backoff, &self.health, &self.give_up).await
    }
}

/// The connected pieces a service is built from.
pub struct Parts {
    pub consumer: Arc<Consumer_>,
    pub context: GroupContext,
    pub producer: FutureProducer,
    pub writer: BatchWriter,
    pub regions: RegionMap,
    pub health: Health,
    pub give_up: CancellationToken,
}
