//! The fleet's behaviour, step by step: devices connect (or fail to), stay a while and drop
//! for a reason that depends on their region's trouble; twins sharing a client id take the
//! session from each other. Seeded: the same seed gives the same events (timestamps aside).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::fleet::{Device, Region, Trouble};
use crate::payload;
use crate::reasons::{Connack, Disconnect};
use crate::truth::Truth;

/// One event to publish: the topic an EMQX republish rule would use, the client id, the payload.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub topic: &'static str,
    pub clientid: String,
    pub payload: Value,
}

pub struct Story {
    regions: Vec<Region>,
    devices: Vec<Device>,
    /// When each device connected, while it is connected.
    online: Vec<Option<i64>>,
    twins: Vec<[Device; 2]>,
    /// Which twin holds the session, and since when.
    holder: Vec<Option<(usize, i64)>>,
    rng: ChaCha8Rng,
    /// How many events the run will send, to place the regional troubles in time.
    planned: u64,
    /// Connection attempts so far: each gets its own source port, as a real client's does.
    attempts: u64,
    /// The address of each device's (or twin's) current connection, by its stable address.
    connections: HashMap<String, String>,
    pub truth: Truth,
}

impl Story {
    pub fn new(regions: Vec<Region>, devices: Vec<Device>, twins: Vec<[Device; 2]>, seed: u64, planned: u64) -> Self {
        Story {
            online: vec![None; devices.len()],
            holder: vec![None; twins.len()],
            regions,
            devices,
            twins,
            rng: ChaCha8Rng::seed_from_u64(seed),
            planned: planned.max(1),
            attempts: 0,
            connections: HashMap::new(),
            truth: Truth::default(),
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The next one to three events, stamped `now` (ms).
    pub fn step(&mut self, now: i64) -> Vec<Emitted> {
        let progress = self.truth.total() as f64 / self.planned as f64;
        let mut out = Vec::with_capacity(3);
        if !self.twins.is_empty() && self.rng.random_bool(0.01) {
            let k = self.rng.random_range(0..self.twins.len());
            self.takeover(k, now, &mut out);
            return out;
        }
        let d = self.rng.random_range(0..self.devices.len());
        let region = self.devices[d].region;
        let trouble = self.regions[region].trouble;
        let during = |from: f64, to: f64| progress >= from && progress < to;
        match self.online[d] {
            Some(since) => {
                let reason = match trouble {
                    Trouble::Outage { from, to } if during(from, to) => Some(Disconnect::KeepaliveTimeout),
                    Trouble::BadNetwork => self.pick(&[(Disconnect::KeepaliveTimeout, 50), (Disconnect::Normal, 35)]),
                    _ => self.pick(&[(Disconnect::Normal, 70), (Disconnect::TcpClosed, 20)]),
                }
                .unwrap_or(Disconnect::TcpClosed);
                self.online[d] = None;
                self.disconnected(&self.devices[d].clone(), reason, since, now, &mut out);
            }
            None => {
                let device = self.devices[d].clone();
                let outcome = match trouble {
                    _ if device.bad_password => Connack::BadCredentials,
                    Trouble::Outage { from, to } if during(from, to) => Connack::ServerUnavailable,
                    Trouble::ServerBusy { from, to } if during(from, to) && self.rng.random_bool(0.7) => {
                        Connack::ServerBusy
                    }
                    _ if self.rng.random_bool(0.002) => Connack::NotAuthorized,
                    _ => Connack::Success,
                };
                self.connack(&device, outcome, now, &mut out);
                if !outcome.failed() {
                    self.online[d] = Some(now);
                    self.connected(&device, now, &mut out);
                }
            }
        }
        out
    }

    /// The other twin connects and takes the session over.
    fn takeover(&mut self, k: usize, now: i64, out: &mut Vec<Emitted>) {
        let next = match self.holder[k] {
            Some((which, since)) => {
                let old = self.twins[k][which].clone();
                self.disconnected(&old, Disconnect::Takenover, since, now, out);
                1 - which
            }
            None => 0,
        };
        let new = self.twins[k][next].clone();
        self.connack(&new, Connack::Success, now, out);
        self.connected(&new, now, out);
        self.holder[k] = Some((next, now));
    }

    fn pick(&mut self, weights: &[(Disconnect, u32)]) -> Option<Disconnect> {
        let roll = self.rng.random_range(0..100);
        let mut acc = 0;
        weights
            .iter()
            .find(|(_, w)| {
                acc += w;
                roll < acc
            })
            .map(|(d, _)| *d)
    }

    fn connack(&mut self, d: &Device, outcome: Connack, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        let (raw, name) = outcome.spelled(d);
        self.truth.connack(region.name, name, outcome.failed());
        // A new TCP connection: a new ephemeral port (32768-60999, like Linux's default range).
        let port = 32_768 + self.attempts % 28_232;
        self.attempts += 1;
        let ip = d.peer.rsplit_once(':').map_or(d.peer.as_str(), |(ip, _)| ip);
        let peer = format!("{ip}:{port}");
        let payload = payload::connack(d, &peer, region, raw, now);
        self.connections.insert(d.peer.clone(), peer);
        out.push(Emitted { topic: "client_connack", clientid: d.clientid.clone(), payload });
    }

    fn connected(&mut self, d: &Device, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        self.truth.connected(region.name);
        out.push(Emitted {
            topic: "client_connected",
            clientid: d.clientid.clone(),
            payload: payload::connected(d, self.peer(d), region, now),
        });
    }

    fn disconnected(&mut self, d: &Device, reason: Disconnect, since: i64, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        let (raw, name) = reason.spelled(d);
        self.truth.disconnected(region.name, name, reason.abnormal());
        out.push(Emitted {
            topic: "client_disconnected",
            clientid: d.clientid.clone(),
            payload: payload::disconnected(d, self.peer(d), region, raw, since, now),
        });
    }

    /// The address of the device's current connection.
    fn peer<'a>(&'a self, d: &'a Device) -> &'a str {
        self.connections.get(&d.peer).map_or(&d.peer, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{devices, regions};

    fn run(seed: u64, n: u64) -> (Vec<String>, Truth) {
        let regions = regions();
        let (devices, twins) = devices(1500, &regions);
        let mut story = Story::new(regions, devices, twins, seed, n);
        let mut sent = Vec::new();
        while story.truth.total() < n {
            sent.extend(story.step(1_000).into_iter().map(|e| e.payload.to_string()));
        }
        (sent, story.truth)
    }

    #[test]
    fn the_same_seed_tells_the_same_story() {
        let (a, ta) = run(7, 5000);
        let (b, tb) = run(7, 5000);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let (c, _) = run(8, 5000);
        assert_ne!(a, c);
    }

    #[test]
    fn every_trouble_shows_in_the_truth() {
        let (_, truth) = run(1, 20_000);
        assert_eq!(truth.total(), truth.events.values().sum::<u64>());
        let rate = |r: &str| truth.regions[r].failure_rate().unwrap();
        assert!(rate("us-east") > rate("eu-west"), "server busy");
        assert!(rate("sa-east") > rate("eu-west"), "outage");
        for reason in [
            "connack:server_busy",
            "connack:server_unavailable",
            "connack:bad_username_or_password",
            "connack:success",
            "disconnect:takenover",
            "disconnect:keepalive_timeout",
            "disconnect:tcp_closed",
            "disconnect:normal",
        ] {
            assert!(truth.reasons.get(reason).copied().unwrap_or(0) > 0, "{reason}: {:?}", truth.reasons);
        }
    }
}
