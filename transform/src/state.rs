//! Where each Kafka partition stands in the warehouse, so a restart never writes an event
//! twice. Before a batch's files are written, `_state/TOPIC/PARTITION.json` records the batch
//! as pending; after all of them, as done. A restart skips every offset up to `done`, and a
//! pending batch is written again with exactly the same offsets, so its files get the same
//! names and replace any that the crash left behind.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::warehouse::Warehouse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The last offset whose batch is completely in the warehouse; -1 for none.
    pub done: i64,
    /// A batch `[first, last]` whose files may be partly written.
    pub pending: Option<(i64, i64)>,
}

impl Default for PartitionState {
    fn default() -> Self {
        PartitionState { done: -1, pending: None }
    }
}

pub fn state_path(topic: &str, partition: i32) -> String {
    format!("_state/{topic}/{partition}.json")
}

/// The file name of a batch's files in every table: topic, partition, first and last offset.
pub fn batch_file(topic: &str, partition: i32, first: i64, last: i64) -> String {
    format!("{topic}-p{partition}-{first:020}-{last:020}.parquet")
}

/// Reads a partition's state; a missing file means nothing was written yet.
pub async fn load(wh: &Warehouse, topic: &str, partition: i32) -> Result<PartitionState> {
    let path = state_path(topic, partition);
    match wh.get(&path).await? {
        None => Ok(PartitionState::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::State { path, message: e.to_string() }),
    }
}

pub async fn save(wh: &Warehouse, topic: &str, partition: i32, state: PartitionState) -> Result<()> {
    let body = serde_json::to_vec(&state).expect("state serializes");
    wh.put(&state_path(topic, partition), body.into()).await
}

/// The offsets of a batch from its file name, if it is one.
pub fn parse_batch_file(name: &str) -> Option<(String, i32, i64, i64)> {
    let stem = name.strip_suffix(".parquet")?;
    let mut parts = stem.rsplitn(4, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.strip_prefix('p')?.parse().ok()?;
    Some((parts.next()?.to_string(), partition, first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_round_trip_and_sort_by_offset() {
        let a = batch_file("mqtt.client-events", 3, 0, 999);
        let b = batch_file("mqtt.client-events", 3, 1000, 1999);
        assert!(a < b);
        assert_eq!(parse_batch_file(&a), Some(("mqtt.client-events".into(), 3, 0, 999)));
        assert_eq!(parse_batch_file("compacted-1.parquet"), None);
    }

    #[tokio::test]
    async fn state_round_trips_and_defaults_to_nothing_done() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(load(&wh, "t", 0).await.unwrap(), PartitionState::default());
        let s = PartitionState { done: 9, pending: Some((10, 19)) };
        save(&wh, "t", 0, s).await.unwrap();
        assert_eq!(load(&wh, "t", 0).await.unwrap(), s);
        std::fs::write(dir.path().join("_state/t/0.json"), "{").unwrap();
        assert!(load(&wh, "t", 0).await.unwrap_err().to_string().contains("_state/t/0.json"));
    }
}
