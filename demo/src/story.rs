//! The fleet's behaviour, step by step: devices connect (or fail to), stay a while and drop
//! for a reason that depends on their region's trouble; twins sharing a client id take the
//! session from each other. Seeded: the same seed gives the same events (timestamps aside).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::fleet::{Device, Region, Shape, Trouble};
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
    /// The millisecond of each client id's last turn.
    last: HashMap<String, i64>,
    pub truth: Truth,
    /// How far through the run the current step is (0 to 1).
    progress: f64,
}

impl Story {
    pub fn new(regions: Vec<Region>, devices: Vec<Device>, twins: Vec<[Device; 2]>, seed: u64, planned: u64) -> Self {
        let mut truth = Truth::default();
        for r in &regions {
            if let Trouble::Outage { from, .. } | Trouble::ServerBusy { from, .. } = r.trouble {
                if from >= 0.5 {
                    truth.changes.push(format!("region={}", r.name));
                }
            }
        }
        if devices.iter().any(|d| d.rollout && d.shape == Shape::Emqx && d.proto_ver == 5) {
            truth.changes.push(format!("attr.fw={}", crate::fleet::FW_ROLLED_OUT));
        }
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
            last: HashMap::new(),
            truth,
            progress: 0.0,
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The next one to three events, stamped `now` (ms).
    pub fn step(&mut self, now: i64) -> Vec<Emitted> {
        let progress = self.truth.total() as f64 / self.planned as f64;
        self.progress = progress;
        let mut out = Vec::with_capacity(3);
        if !self.twins.is_empty() && self.rng.random_bool(0.01) {
            let k = self.rng.random_range(0..self.twins.len());
            if self.busy(&self.twins[k][0].clientid.clone(), now) {
                return out;
            }
            self.takeover(k, now, &mut out);
            return out;
        }
        let d = self.rng.random_range(0..self.devices.len());
        if self.busy(&self.devices[d].clientid.clone(), now) {
            return out;
        }
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
                // Now and then the broker's disconnect event is lost on its way (an EMQX rule
                // that failed, a bridge that dropped it): the warehouse must say `missing`.
                if self.devices[d].shape == Shape::Emqx && self.rng.random_bool(0.005) {
                    self.truth.lost(self.regions[region].name);
                    return out;
                }
                self.disconnected(&self.devices[d].clone(), reason, since, now, &mut out);
            }
            None => {
                let device = self.devices[d].clone();
                let fw = self.firmware(&device);
                let outcome = match trouble {
                    _ if device.bad_password => Connack::BadCredentials,
                    _ if fw == Some(crate::fleet::FW_ROLLED_OUT) && self.rng.random_bool(0.3) => {
                        Connack::BadCredentials
                    }
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

    /// The firmware an EMQX MQTT 5 device reports at this point of the run (others say none).
    fn firmware(&self, d: &Device) -> Option<&'static str> {
        (d.shape == Shape::Emqx && d.proto_ver == 5).then_some(if d.rollout && self.progress >= 0.5 {
            crate::fleet::FW_ROLLED_OUT
        } else {
            crate::fleet::FW_BEFORE
        })
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

    /// True when the client id already had its turn in this millisecond (a real client cannot
    /// end one connection and open another within it; some brokers' events, AWS's
    /// `connect_failed`, would then be the same bytes, which transform takes for a copy).
    fn busy(&mut self, clientid: &str, now: i64) -> bool {
        if self.last.get(clientid) == Some(&now) {
            return true;
        }
        self.last.insert(clientid.to_string(), now);
        false
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

    /// A connect attempt, announced as the device's broker announces it: EMQX with a CONNACK
    /// either way; AWS IoT Core only a refused one (`connect_failed`, for credentials: it has
    /// no event for a busy or absent server); Azure Event Grid and VerneMQ no attempt at all,
    /// only the connect that follows a successful one.
    fn connack(&mut self, d: &Device, outcome: Connack, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        // A new TCP connection: a new ephemeral port (32768-60999, like Linux's default range).
        let port = 32_768 + self.attempts % 28_232;
        self.attempts += 1;
        let ip = d.peer.rsplit_once(':').map_or(d.peer.as_str(), |(ip, _)| ip);
        let peer = format!("{ip}:{port}");
        let clientid = d.clientid.clone();
        match (d.shape, outcome) {
            (Shape::Emqx, _) => {
                let (raw, name) = outcome.spelled(d);
                self.truth.connack(region.name, name, outcome.failed());
                let fw = self.firmware(d);
                self.truth.firmware(fw, outcome.failed());
                let payload = payload::connack(d, &peer, region, raw, fw, now);
                out.push(Emitted { topic: "client_connack", clientid, payload });
            }
            (Shape::Hivemq, refused) if refused.failed() => {
                if let Some((method, code, name)) = refused.hivemq() {
                    self.truth.connack(region.name, name, true);
                    self.truth.firmware(None, true);
                    let payload = payload::hivemq::refused(d, region, &peer, method, code, now);
                    out.push(Emitted { topic: "hivemq/lifecycle", clientid, payload });
                }
            }
            (Shape::AwsIot, Connack::BadCredentials | Connack::NotAuthorized) => {
                self.truth.connack(region.name, "not_authorized", true);
                self.truth.firmware(None, true);
                let payload = payload::aws::connect_failed(d, &peer, "AUTHORIZATION_FAILED", now);
                out.push(Emitted { topic: "client_connack", clientid, payload });
            }
            // Announced by the connect that follows.
            (_, Connack::Success) => self.truth.attempt(region.name, "success", false),
            _ => {}
        }
        self.connections.insert(d.peer.clone(), peer);
    }

    fn connected(&mut self, d: &Device, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        self.truth.connected(region.name);
        let peer = self.peer(d).to_string();
        let (topic, payload) = match d.shape {
            Shape::Emqx => ("client_connected", payload::connected(d, &peer, region, now)),
            Shape::AwsIot => ("client_connected", payload::aws::connected(d, &peer, &session(&peer), now)),
            Shape::Azure => {
                ("client_connected", payload::azure::session(d, region, "Connected", None, self.attempts, now))
            }
            Shape::Hivemq => {
                let payload = payload::hivemq::call(d, region, &peer, "onAuthenticationSuccessful", None, now);
                ("hivemq/lifecycle", payload)
            }
            Shape::Vernemq => ("vernemq/on_register", payload::vernemq::register(d, &peer)),
        };
        out.push(Emitted { topic, clientid: d.clientid.clone(), payload });
    }

    /// A session's end. AWS's and VerneMQ's disconnects carry no address (nor node), so the
    /// warehouse files them under region `unknown`; VerneMQ's carry no reason either.
    fn disconnected(&mut self, d: &Device, reason: Disconnect, since: i64, now: i64, out: &mut Vec<Emitted>) {
        let region = &self.regions[d.region];
        let peer = self.peer(d).to_string();
        let (topic, payload) = match d.shape {
            Shape::Emqx => {
                let (raw, name) = reason.spelled(d);
                self.truth.disconnected(region.name, name, reason.abnormal());
                ("client_disconnected", payload::disconnected(d, &peer, region, raw, since, now))
            }
            Shape::AwsIot => {
                let (raw, by_client, name) = reason.aws();
                self.truth.disconnected("unknown", name, reason.abnormal());
                ("client_disconnected", payload::aws::disconnected(d, &session(&peer), raw, by_client, now))
            }
            Shape::Azure => {
                let (raw, name) = reason.azure();
                self.truth.disconnected(region.name, name, reason.abnormal());
                let payload = payload::azure::session(d, region, "Disconnected", Some(raw), self.attempts, now);
                ("client_disconnected", payload)
            }
            Shape::Hivemq => {
                let (method, code, name) = reason.hivemq(d);
                self.truth.disconnected(region.name, name, reason.abnormal());
                ("hivemq/lifecycle", payload::hivemq::call(d, region, &peer, method, code, now))
            }
            Shape::Vernemq => {
                self.truth.disconnected("unknown", "", false);
                ("vernemq/on_client_offline", payload::vernemq::offline(d))
            }
        };
        out.push(Emitted { topic, clientid: d.clientid.clone(), payload });
    }

    /// The address of the device's current connection.
    fn peer<'a>(&'a self, d: &'a Device) -> &'a str {
        self.connections.get(&d.peer).map_or(&d.peer, String::as_str)
    }
}

/// AWS's session identifier: one per connection (here, its source address).
fn session(peer: &str) -> String {
    format!("s-{peer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{devices, regions};

    fn run(seed: u64, n: u64) -> (Vec<String>, Truth) {
        let regions = regions();
        let (devices, twins) = devices(1500, &regions, crate::fleet::Format::Emqx);
        let mut story = Story::new(regions, devices, twins, seed, n);
        let (mut sent, mut now) = (Vec::new(), 1_000);
        while story.truth.total() < n {
            now += 1;
            sent.extend(story.step(now).into_iter().map(|e| e.payload.to_string()));
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
