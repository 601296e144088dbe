//! Liveness and readiness: ready means every MQTT connection up with every subscription
//! granted, Kafka reachable, no event stuck unconfirmed, and no standing Kafka refusal.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    /// One bit per MQTT connection that is up (at most 16, `config::MAX_CONNECTIONS`).
    mqtt_up: AtomicU32,
    /// MQTT connections beyond the first (so the default of one needs no setting).
    mqtt_extra: AtomicUsize,
    kafka: AtomicBool,
    stalled: AtomicBool,
    /// Named problems that block readiness until cleared, e.g. a refused subscription or a
    /// topic Kafka refuses to write to; the value says what is wrong.
    problems: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// How many MQTT connections must be up to be ready.
    pub fn expect_mqtt(&self, connections: usize) {
        self.0.mqtt_extra.store(connections.saturating_sub(1), Ordering::Relaxed);
    }

    pub fn set_mqtt(&self, connection: usize, up: bool) {
        let bit = 1u32 << connection;
        match up {
            true => self.0.mqtt_up.fetch_or(bit, Ordering::Relaxed),
            false => self.0.mqtt_up.fetch_and(!bit, Ordering::Relaxed),
        };
    }

    pub fn set_kafka(&self, up: bool) {
        self.0.kafka.store(up, Ordering::Relaxed);
    }

    pub fn set_stalled(&self, stalled: bool) {
        self.0.stalled.store(stalled, Ordering::Relaxed);
    }

    /// Sets (`Some`) or clears (`None`) the problem `key`.
    pub fn set_problem(&self, key: &str, problem: Option<String>) {
        let mut problems = self.0.problems.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(p) => problems.insert(key.to_string(), p),
            None => problems.remove(key),
        };
    }

    /// MQTT connections up.
    pub fn mqtt_up(&self) -> usize {
        self.0.mqtt_up.load(Ordering::Relaxed).count_ones() as usize
    }

    /// Every MQTT connection up.
    pub fn mqtt(&self) -> bool {
        self.mqtt_up() > self.0.mqtt_extra.load(Ordering::Relaxed)
    }

    pub fn kafka(&self) -> bool {
        self.0.kafka.load(Ordering::Relaxed)
    }

    pub fn stalled(&self) -> bool {
        self.0.stalled.load(Ordering::Relaxed)
    }

    pub fn problems(&self) -> BTreeMap<String, String> {
        self.0.problems.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn ready(&self) -> bool {
        self.mqtt() && self.kafka() && !self.stalled() && self.problems().is_empty()
    }
}

impl connaudit_service::Readiness for Health {
    fn readiness(&self) -> (bool, serde_json::Value) {
        let parts = serde_json::json!({
            "mqtt": self.mqtt(),
            "mqtt_connections_up": self.mqtt_up(),
            "kafka": self.kafka(),
            "stalled": self.stalled(),
            "problems": self.problems(),
        });
        (self.ready(), parts)
    }
}
