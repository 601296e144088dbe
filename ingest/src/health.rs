//! Liveness and readiness: ready means connected to both the MQTT broker and Kafka.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    mqtt: AtomicBool,
    kafka: AtomicBool,
}

impl Health {
    pub fn set_mqtt(&self, up: bool) {
        self.0.mqtt.store(up, Ordering::Relaxed);
    }

    pub fn set_kafka(&self, up: bool) {
        self.0.kafka.store(up, Ordering::Relaxed);
    }

    pub fn mqtt(&self) -> bool {
        self.0.mqtt.load(Ordering::Relaxed)
    }

    pub fn kafka(&self) -> bool {
        self.0.kafka.load(Ordering::Relaxed)
    }

    pub fn ready(&self) -> bool {
        self.mqtt() && self.kafka()
    }
}
