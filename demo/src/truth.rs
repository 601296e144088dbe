//! The ground truth of a simulation: what was sent, counted by the simulator itself, so the
//! pipeline's answers can be checked against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionTruth {
    pub connacks: u64,
    pub failed_connacks: u64,
    pub connects: u64,
    pub disconnects: u64,
    pub abnormal_disconnects: u64,
}

impl RegionTruth {
    /// failed CONNACKs / all CONNACKs, as the warehouse computes it.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.connacks > 0).then(|| self.failed_connacks as f64 / self.connacks as f64)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// Events by type (`client.connack`, ...).
    pub events: BTreeMap<String, u64>,
    pub regions: BTreeMap<String, RegionTruth>,
    /// `connack:<name>` and `disconnect:<name>`, named as the reason catalog names them.
    pub reasons: BTreeMap<String, u64>,
    /// Disconnects the broker never announced (the device dropped, the event was lost), per
    /// region: sessions the warehouse can only end as `missing`.
    #[serde(default)]
    pub lost: BTreeMap<String, u64>,
    /// CONNACKs and failed ones per firmware the devices reported (`-` for none).
    #[serde(default)]
    pub firmware: BTreeMap<String, [u64; 2]>,
    /// What the run's second half changed, as `connaudit audit explain` names a value
    /// (`region=sa-east`, `attr.fw=2.4.1`): the troubles that start there and the rollout.
    #[serde(default)]
    pub changes: Vec<String>,
}

impl Truth {
    pub fn total(&self) -> u64 {
        self.events.values().sum()
    }

    /// A connect attempt announced by a CONNACK event.
    pub fn connack(&mut self, region: &str, reason: &str, failed: bool) {
        *self.events.entry("client.connack".into()).or_default() += 1;
        self.attempt(region, reason, failed);
    }

    /// A connect attempt without a CONNACK event: a broker that announces only the connect
    /// (the warehouse counts that connect as a successful attempt).
    pub fn attempt(&mut self, region: &str, reason: &str, failed: bool) {
        *self.reasons.entry(format!("connack:{reason}")).or_default() += 1;
        let r = self.regions.entry(region.into()).or_default();
        r.connacks += 1;
        r.failed_connacks += u64::from(failed);
    }

    pub fn connected(&mut self, region: &str) {
        *self.events.entry("client.connected".into()).or_default() += 1;
        self.regions.entry(region.into()).or_default().connects += 1;
    }

    pub fn disconnected(&mut self, region: &str, reason: &str, abnormal: bool) {
        *self.events.entry("client.disconnected".into()).or_default() += 1;
        *self.reasons.entry(format!("disconnect:{reason}")).or_default() += 1;
        let r = self.regions.entry(region.into()).or_default();
        r.disconnects += 1;
        r.abnormal_disconnects += u64::from(abnormal);
    }

    /// A CONNACK of a device reporting firmware `fw`.
    pub fn firmware(&mut self, fw: Option<&str>, failed: bool) {
        let n = self.firmware.entry(fw.unwrap_or("-").into()).or_default();
        n[0] += 1;
        n[1] += u64::from(failed);
    }

    /// A disconnect that was never announced.
    pub fn lost(&mut self, region: &str) {
        *self.lost.entry(region.into()).or_default() += 1;
    }

    /// A plain-text report: events by type and per-region failure rates.
    pub fn report(&self) -> String {
        let mut out = format!("Ground truth: {} events sent\n", self.total());
        for (event, n) in &self.events {
            out.push_str(&format!("  {event:<20} {n:>9}\n"));
        }
        out.push_str(&format!(
            "  {:<10} {:>9} {:>9} {:>12} {:>9} {:>9}\n",
            "region", "connacks", "failed", "failure rate", "connects", "abnormal"
        ));
        for (name, r) in &self.regions {
            let rate = r.failure_rate().map_or("-".to_string(), |x| format!("{x:.4}"));
            out.push_str(&format!(
                "  {name:<10} {:>9} {:>9} {rate:>12} {:>9} {:>9}\n",
                r.connacks, r.failed_connacks, r.connects, r.abnormal_disconnects
            ));
        }
        out
    }
}
