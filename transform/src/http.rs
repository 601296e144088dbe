//! What `/readyz` reports: Kafka reachable and the warehouse writable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<[AtomicBool; 2]>);

impl Health {
    pub fn set_kafka(&self, up: bool) {
        self.0[0].store(up, Ordering::Relaxed);
    }

    pub fn set_warehouse(&self, up: bool) {
        self.0[1].store(up, Ordering::Relaxed);
    }

    pub fn kafka(&self) -> bool {
        self.0[0].load(Ordering::Relaxed)
    }

    pub fn warehouse(&self) -> bool {
        self.0[1].load(Ordering::Relaxed)
    }
}

impl connaudit_service::Readiness for Health {
    fn readiness(&self) -> (bool, serde_json::Value) {
        let (kafka, warehouse) = (self.kafka(), self.warehouse());
        (kafka && warehouse, json!({ "kafka": kafka, "warehouse": warehouse }))
    }
}
