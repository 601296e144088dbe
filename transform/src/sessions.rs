//! The `sessions` table: a partition's connects and disconnects, in offset order, paired into
//! sessions. A session's row is written when its end is known: its disconnect, or an event
//! of the client that proves the disconnect was lost (`end_reason = 'missing'`). The open
//! sessions are state carried from batch to batch; a newly assigned partition rebuilds it
//! from the `events` table (the same steps over the events before its first batch), so a
//! replayed batch pairs exactly as its first attempt did.
//!
//! Pairing, per client (a client's events share a partition and keep their order):
//! - a connect opens a session; the one open before it is kept as *superseded*, because a
//!   takeover's disconnect of the old connection may come just after the new connect;
//! - a disconnect ends the open session it names (EMQX's `connected_at`), else the
//!   superseded one when it is a takeover, else the latest; a superseded session not ended
//!   that way, or any session older than the one a disconnect names, ends as `missing`;
//! - a connect while a superseded session is still open ends that one as `missing`.
//!
//! Sessions older than the horizon are forgotten: their late disconnect makes a row from
//! itself alone, and their lost disconnect is not reported.

use std::borrow::Cow;

use connaudit_model::EventType;
use foldhash::HashMap;

use crate::row::Row;

mod batch;
pub mod online;

pub use batch::{replay, to_batch};

/// The end reason of a session whose disconnect never arrived.
pub const MISSING: &str = "missing";
const TAKEOVER: &str = "session-conflict";

/// One connect or disconnect, borrowed from a batch row or a row read back from `events`.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub connect: bool,
    pub clientid: &'a str,
    pub username: Option<&'a str>,
    pub broker: Option<&'a str>,
    pub node: Option<&'a str>,
    pub region: &'a str,
    pub peer_ip: Option<&'a str>,
    pub peer_port: Option<i32>,
    /// Milliseconds, as every time here.
    pub ts: i64,
    pub connected_at: Option<i64>,
    pub disconnected_at: Option<i64>,
    pub reason: Option<&'a str>,
    pub category: Option<&'a str>,
    pub abnormal: bool,
    pub initiator: Option<&'a str>,
    pub offset: i64,
    pub attributes: Option<&'a str>,
    /// The broker's name for the connection (AWS), shared by a connect and its disconnect.
    pub session_id: Option<&'a str>,
}

impl<'a> Step<'a> {
    /// The step of a batch row; None for a CONNACK.
    pub fn of(row: &'a Row) -> Option<Self> {
        let connect = match row.event {
            EventType::Connected => true,
            EventType::Disconnected => false,
            EventType::Connack => return None,
        };
        Some(Step {
            connect,
            clientid: &row.clientid,
            username: row.username.as_deref(),
            broker: Some(row.broker),
            node: row.node.as_deref(),
            region: &row.region,
            peer_ip: row.peer_ip.as_deref(),
            peer_port: row.peer_port,
            ts: row.ts,
            connected_at: row.connected_at,
            disconnected_at: row.disconnected_at,
            reason: row.reason.as_deref(),
            category: row.category,
            abnormal: row.is_failure,
            initiator: row.initiator,
            offset: row.kafka_offset,
            attributes: row.attributes.as_deref(),
            session_id: row.session_id.as_deref(),
        })
    }

    /// When the session began, as far as this event knows.
    fn began(&self) -> i64 {
        self.connected_at.unwrap_or(self.ts)
    }
}

/// An open session: what its connect said.
#[derive(Debug, Clone, Default)]
struct Open {
    username: Option<String>,
    broker: Option<String>,
    node: Option<String>,
    region: String,
    peer_ip: Option<String>,
    peer_port: Option<i32>,
    ts: i64,
    connected_at: Option<i64>,
    offset: i64,
    attributes: Option<String>,
    session_id: Option<String>,
}

impl Open {
    fn of(s: &Step<'_>) -> Self {
        Open {
            username: s.username.map(str::to_string),
            broker: s.broker.map(str::to_string),
            node: s.node.map(str::to_string),
            region: s.region.to_string(),
            peer_ip: s.peer_ip.map(str::to_string),
            peer_port: s.peer_port,
            ts: s.ts,
            connected_at: s.connected_at,
            offset: s.offset,
            attributes: s.attributes.map(str::to_string),
            session_id: s.session_id.map(str::to_string),
        }
    }

    fn began(&self) -> i64 {
        self.connected_at.unwrap_or(self.ts)
    }
}

/// A client's open sessions: the latest, and the one it superseded while that one's
/// disconnect may still come.
#[derive(Debug, Default)]
struct Client {
    latest: Option<Open>,
    superseded: Option<Open>,
}

/// One row of `sessions`. What the ending event says is borrowed from it (the batch's rows
/// outlive the batch's sessions); what only its connect said is moved out of the open session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session<'a> {
    pub clientid: Cow<'a, str>,
    pub username: Option<Cow<'a, str>>,
    pub broker: Option<Cow<'a, str>>,
    pub node: Option<Cow<'a, str>>,
    pub region: Cow<'a, str>,
    pub peer_ip: Option<Cow<'a, str>>,
    pub peer_port: Option<i32>,
    pub connected_at: Option<i64>,
    pub disconnected_at: Option<i64>,
    pub ended_at: i64,
    pub session_ms: Option<i64>,
    pub end_reason: Cow<'a, str>,
    pub end_category: Option<Cow<'a, str>>,
    pub abnormal: Option<bool>,
    pub ended_by: Option<Cow<'a, str>>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub connect_offset: Option<i64>,
    pub attributes: Option<Cow<'a, str>>,
    /// The connect's own time and region, when it was seen: where `online_hours` counted it
    /// open (not a column of `sessions`).
    pub connect: Option<(i64, Cow<'a, str>)>,
}

/// A partition's open sessions, after the steps through offset `through`.
#[derive(Debug)]
pub struct Tracker {
    partition: i32,
    horizon_ms: i64,
    clients: HashMap<String, Client>,
    /// The newest event time seen, and when the forgotten sessions were last dropped.
    newest: i64,
    swept: i64,
}

impl Tracker {
    pub fn new(partition: i32, horizon_ms: i64) -> Self {
        Tracker { partition, horizon_ms, clients: HashMap::default(), newest: i64::MIN, swept: i64::MIN }
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.clients.values().map(|c| usize::from(c.latest.is_some()) + usize::from(c.superseded.is_some())).sum()
    }

    /// Applies one step; the sessions it ended go to `out`.
    pub fn step<'a>(&mut self, s: &Step<'a>, out: &mut Vec<Session<'a>>) {
        self.newest = self.newest.max(s.ts);
        let oldest = s.ts.saturating_sub(self.horizon_ms);
        let client = match self.clients.get_mut(s.clientid) {
            Some(c) => c,
            None if s.connect => self.clients.entry(s.clientid.to_string()).or_default(),
            None => {
                out.push(self.ended(s, None));
                return;
            }
        };
        // Forgotten: too old to pair with (the same rule whether kept in memory or rebuilt).
        client.latest = client.latest.take().filter(|o| o.ts >= oldest);
        client.superseded = client.superseded.take().filter(|o| o.ts >= oldest);
        let (partition, clientid) = (self.partition, s.clientid);
        if s.connect {
            if let Some(lost) = client.superseded.take() {
                out.push(missing(partition, clientid, lost, s));
            }
            client.superseded = client.latest.replace(Open::of(s));
            return;
        }
        // Which open session the disconnect names: by the broker's session id (AWS), else by
        // the time it began (EMQX's `connected_at`); None when it names none.
        let named = |o: &Option<Open>| {
            let o = o.as_ref()?;
            match (s.session_id, o.session_id.as_deref(), s.connected_at, o.connected_at) {
                (Some(x), Some(y), _, _) => Some(x == y),
                (_, _, Some(x), Some(y)) => Some(x == y),
                _ => None,
            }
        };
        let target = match (named(&client.superseded), named(&client.latest)) {
            (Some(true), _) => Some(client.superseded.take()),
            (_, Some(true)) => Some(client.latest.take()),
            // The disconnect names a session neither connect began: its connect was lost.
            (Some(false), _) | (None, Some(false)) => None,
            (None, None) if s.category == Some(TAKEOVER) && client.superseded.is_some() => {
                Some(client.superseded.take())
            }
            (None, None) => Some(client.latest.take()),
        };
        let ended_latest = target.is_some() && client.latest.is_none();
        let began = s.began();
        let mut lost = Vec::new();
        match target {
            Some(_) if !ended_latest => {}
            // The latest ended: the one it superseded had no disconnect.
            Some(_) => lost.extend(client.superseded.take()),
            // Sessions begun before the one the disconnect names are over.
            None => {
                if client.superseded.as_ref().is_some_and(|o| o.began() < began) {
                    lost.extend(client.superseded.take());
                }
                if client.latest.as_ref().is_some_and(|o| o.began() < began) {
                    lost.extend(client.latest.take());
                    client.latest = client.superseded.take();
                }
            }
        }
        let empty = client.latest.is_none() && client.superseded.is_none();
        out.extend(lost.into_iter().map(|o| missing(partition, clientid, o, s)));
        out.push(self.ended(s, target.flatten()));
        if empty {
            self.clients.remove(s.clientid);
        }
    }

    /// Drops the sessions older than the horizon (at most once an hour of event time); they
    /// would be ignored anyway.
    pub fn sweep(&mut self) {
        if self.newest < self.swept.saturating_add(3_600_000) {
            return;
        }
        self.swept = self.newest;
        let oldest = self.newest.saturating_sub(self.horizon_ms);
        self.clients.retain(|_, c| {
            c.latest = c.latest.take().filter(|o| o.ts >= oldest);
            c.superseded = c.superseded.take().filter(|o| o.ts >= oldest);
            c.latest.is_some() || c.superseded.is_some()
        });
    }

    /// The session a disconnect ended, with what its connect said when it was seen.
    fn ended<'a>(&self, s: &Step<'a>, open: Option<Open>) -> Session<'a> {
        let seen = open.is_some();
        let o = open.unwrap_or_default();
        let connected_at = s.connected_at.or_else(|| seen.then(|| o.began()));
        let disconnected_at = s.disconnected_at.unwrap_or(s.ts);
        // A disconnect without an address (AWS, VerneMQ) is filed under `unknown`.
        let region = match s.region {
            "unknown" if seen => Cow::Owned(o.region.clone()),
            r => Cow::Borrowed(r),
        };
        let pick = |mine: Option<&'a str>, theirs: Option<String>| mine.map(Cow::Borrowed).or(theirs.map(Cow::Owned));
        Session {
            clientid: Cow::Borrowed(s.clientid),
            username: pick(s.username, o.username),
            broker: pick(s.broker, o.broker),
            node: pick(s.node, o.node),
            region,
            peer_ip: pick(s.peer_ip, o.peer_ip),
            peer_port: s.peer_port.or(o.peer_port),
            connected_at,
            disconnected_at: Some(disconnected_at),
            ended_at: s.ts,
            session_ms: connected_at.map(|c| disconnected_at - c).filter(|d| *d >= 0),
            end_reason: Cow::Borrowed(s.reason.unwrap_or("unknown")),
            end_category: s.category.map(Cow::Borrowed),
            abnormal: Some(s.abnormal),
            ended_by: s.initiator.map(Cow::Borrowed),
            kafka_partition: self.partition,
            kafka_offset: s.offset,
            connect_offset: seen.then_some(o.offset),
            // The connect's (what the device said when it came), else the disconnect's.
            attributes: o.attributes.map(Cow::Owned).or(s.attributes.map(Cow::Borrowed)),
            connect: seen.then(|| (o.ts, Cow::Owned(o.region))),
        }
    }
}

/// A session whose disconnect never came; `by` is the event that proved it over.
fn missing<'a>(partition: i32, clientid: &'a str, o: Open, by: &Step<'a>) -> Session<'a> {
    Session {
        clientid: Cow::Borrowed(clientid),
        connected_at: Some(o.began()),
        username: o.username.map(Cow::Owned),
        broker: o.broker.map(Cow::Owned),
        node: o.node.map(Cow::Owned),
        peer_ip: o.peer_ip.map(Cow::Owned),
        peer_port: o.peer_port,
        disconnected_at: None,
        ended_at: by.ts,
        session_ms: None,
        end_reason: Cow::Borrowed(MISSING),
        end_category: None,
        abnormal: None,
        ended_by: None,
        kafka_partition: partition,
        kafka_offset: by.offset,
        connect_offset: Some(o.offset),
        connect: Some((o.ts, Cow::Owned(o.region.clone()))),
        region: Cow::Owned(o.region),
        attributes: o.attributes.map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests;
