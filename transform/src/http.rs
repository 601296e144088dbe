//! What `/readyz` reports: Kafka reachable, the warehouse writable, Kafka taking what
//! transform produces (dead letters, alerts), and no partition whose offsets went back.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;

#[derive(Debug, Clone)]
pub struct Health(Arc<[AtomicBool; 3]>, Arc<Mutex<BTreeSet<i32>>>);

impl Default for Health {
    fn default() -> Self {
        let up = [AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(true)];
        Health(Arc::new(up), Arc::default())
    }
}

impl Health {
    pub fn set_kafka(&self, up: bool) {
        self.0[0].store(up, Ordering::Relaxed);
    }

    pub fn set_warehouse(&self, up: bool) {
        self.0[1].store(up, Ordering::Relaxed);
    }

    /// Whether the last record produced (a dead letter, an alert) was taken.
    pub fn set_producing(&self, up: bool) {
        self.0[2].store(up, Ordering::Relaxed);
    }

    /// Marks (or clears) a partition whose offsets went back below the warehouse's position.
    pub fn set_went_back(&self, partition: i32, back: bool) {
        let mut set = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if back {
            set.insert(partition);
        } else {
            set.remove(&partition);
        }
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
        let producing = self.0[2].load(Ordering::Relaxed);
        let went_back: Vec<i32> = self.1.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        let ready = kafka && warehouse && producing && went_back.is_empty();
        (
            ready,
            json!({ "kafka": kafka, "warehouse": warehouse, "producing": producing, "offsets_went_back": went_back }),
        )
    }
}
