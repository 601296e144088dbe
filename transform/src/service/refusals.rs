//! Records the service refuses or cannot place: dead letters (cut, then dropped, when Kafka
//! refuses them for good) and records at or below the warehouse's position whose partition's
//! offsets went back.

use connaudit_kafka::header;
use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use tracing::{error, warn};

use super::Service;
use crate::dedup::Window;
use crate::kafka::{self, Refused};
use crate::metrics::{self as m, totals};

impl Service {
    pub(super) async fn dead_letter(&self, msg: &BorrowedMessage<'_>, e: &connaudit_model::Error) {
        let key = msg.key().and_then(|k| std::str::from_utf8(k).ok()).unwrap_or_default();
        let (partition, offset) = (msg.partition().to_string(), msg.offset().to_string());
        let reason = e.to_string();
        let mut headers = vec![
            (header::ERROR, reason.as_str()),
            (header::ERROR_KIND, e.kind()),
            (header::SOURCE, "transform"),
            (header::SOURCE_TOPIC, self.topic.as_str()),
            (header::SOURCE_PARTITION, partition.as_str()),
            (header::SOURCE_OFFSET, offset.as_str()),
        ];
        warn!(partition = msg.partition(), offset = msg.offset(), error = %e, "Record is not an event; sent to the dead-letter topic.");
        let payload = msg.payload().unwrap_or_default();
        let (producer, health, dlq) = (&self.producer, &self.health, self.dlq_topic.as_str());
        let Err(Refused::ForGood(why)) = kafka::deliver(producer, health, dlq, key, payload, &headers).await else {
            totals::add("dead_lettered", 1);
            return;
        };
        // Too large or invalid for Kafka: the reason and the start of the payload, once more.
        let size = payload.len().to_string();
        headers.push((header::TRUNCATED_FROM, size.as_str()));
        headers.push((header::KAFKA_REFUSED, why.as_str()));
        let cut = &payload[..payload.len().min(kafka::DEAD_LETTER_CUT)];
        match kafka::deliver(producer, health, dlq, key, cut, &headers).await {
            Ok(()) => {
                metrics::counter!(m::DEAD_LETTERS_REFUSED, "outcome" => "truncated").increment(1);
                totals::add("dead_lettered", 1);
            }
            Err(Refused::ForGood(again)) => {
                metrics::counter!(m::DEAD_LETTERS_REFUSED, "outcome" => "dropped").increment(1);
                totals::add("skipped", 1);
                error!(partition = msg.partition(), offset = msg.offset(), bytes = payload.len(), error = %again,
                    "Kafka refused a dead letter, cut too; the record is dropped and the partition moves on.");
            }
        }
    }

    /// A record at or below the warehouse's position: the same record the warehouse holds
    /// (a redelivery), or another (the topic was deleted and re-created, its offsets begun
    /// again). Decided by the fingerprint kept at that offset, where the window holds one,
    /// else by the partition's end offset (behind the position: the log went back).
    pub(super) async fn check_went_back(&mut self, msg: &BorrowedMessage<'_>) {
        let (p, offset) = (msg.partition(), msg.offset());
        let Some(slot) = self.slots.get(&p) else { return };
        let done = slot.done;
        let in_window = offset >= Window::start(self.dedup_window, done + 1);
        let went_back = match (slot.window.kept_at(offset), in_window) {
            (Some(kept), _) => match self.parse(msg).ok().and_then(|row| row.fingerprint) {
                Some(fp) => fp != kept,
                None => return,
            },
            // Inside the window but nothing kept there (a dead letter, a copy): the next one.
            (None, true) => return,
            (None, false) => kafka::end_offset(&self.consumer, &self.topic, p).await.is_some_and(|end| end <= done),
        };
        let Some(slot) = self.slots.get_mut(&p) else { return };
        slot.checked = true;
        slot.went_back = went_back;
        if went_back {
            error!(
                partition = p,
                warehouse = done,
                kafka = offset,
                "The partition's offsets went back below what the warehouse holds: the topic was deleted and \
                 re-created (or truncated). Its records up to the warehouse's position are skipped as already \
                 written. Write a re-created topic to a new warehouse, or move this one aside."
            );
            self.health.set_went_back(p, true);
        }
    }
}
