//! The last events from MQTT that Kafka confirmed. A PUBACK that never reaches the broker (the
//! connection dropped before it was written) makes the broker send the event again on the next
//! connection, flagged DUP; when such a redelivery matches one of these, ingest acknowledges it
//! without producing it a second time. Only DUP-flagged messages are looked up, so an event
//! sent twice on purpose is produced twice. Bounded: the oldest entries go first (a copy that
//! gets through is dropped by transform, by its fingerprint).

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Entries kept at most: far more than a broker has in flight for one session (ingest's receive
/// maximum, 1000 by default), about 4 MB.
const KEEP: usize = 100_000;

#[derive(Debug, Default)]
pub struct Redelivery {
    /// SipHash with this process's random keys: a sender who could compute the keys could
    /// craft a payload that collides with one Kafka has, and have its redelivery acknowledged
    /// without being produced (`DefaultHasher::new()`'s keys are fixed and public).
    keys: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Redelivery {
    /// The identity of an MQTT message for this purpose: its topic and payload.
    fn key(&self, topic: &[u8], payload: &[u8]) -> u64 {
        self.keys.hash_one((topic, payload))
    }

    /// Remembers a message Kafka has.
    pub fn delivered(&self, topic: &[u8], payload: &[u8]) {
        let k = self.key(topic, payload);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.seen.insert(k) {
            inner.order.push_back(k);
            if inner.order.len() > KEEP {
                if let Some(old) = inner.order.pop_front() {
                    inner.seen.remove(&old);
                }
            }
        }
    }

    /// True (once) for a redelivered message Kafka already has.
    pub fn already_delivered(&self, topic: &[u8], payload: &[u8]) -> bool {
        let k = self.key(topic, payload);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Its place in `order` is left to age out; `seen` decides.
        inner.seen.remove(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivery_is_recognised_once_and_only_for_its_topic_and_payload() {
        let r = Redelivery::default();
        r.delivered(b"client_connack", b"{\"a\":1}");
        assert!(!r.already_delivered(b"client_connected", b"{\"a\":1}"));
        assert!(!r.already_delivered(b"client_connack", b"{\"a\":2}"));
        assert!(r.already_delivered(b"client_connack", b"{\"a\":1}"));
        assert!(!r.already_delivered(b"client_connack", b"{\"a\":1}"), "once");
    }
}
