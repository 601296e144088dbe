//! What a reason is: its kind, protocol, category and meaning. A leaf both the catalog's data
//! (`reasons.rs`) and its lookups (`catalog.rs`) build on.

use std::fmt;

/// Whether a reason answers a CONNECT or ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    Connack,
    Disconnect,
}

/// Where a reason's name and number come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1.1 CONNACK return codes 0-5.
    Mqtt311,
    /// MQTT 5.0 reason codes.
    Mqtt5,
    /// Named by brokers (EMQX, TDMQ) rather than by the protocol.
    Broker,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Mqtt311 => "mqtt-3.1.1",
            Protocol::Mqtt5 => "mqtt-5.0",
            Protocol::Broker => "broker",
        }
    }
}

/// What kind of trouble a reason points at; what a dashboard groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Success,
    Normal,
    Authentication,
    Authorization,
    ClientId,
    Protocol,
    Capacity,
    Redirect,
    Network,
    SessionConflict,
    Admin,
    Server,
    Unknown,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Success => "success",
            Category::Normal => "normal",
            Category::Authentication => "authentication",
            Category::Authorization => "authorization",
            Category::ClientId => "client-id",
            Category::Protocol => "protocol",
            Category::Capacity => "capacity",
            Category::Redirect => "redirect",
            Category::Network => "network",
            Category::SessionConflict => "session-conflict",
            Category::Admin => "admin",
            Category::Server => "server",
            Category::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One catalog entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Reason {
    /// Canonical name, lower snake case.
    pub name: &'static str,
    /// The protocol's numeric code, where one exists.
    pub code: Option<u8>,
    pub kind: ReasonKind,
    pub protocol: Protocol,
    pub is_failure: bool,
    pub category: Category,
    /// What an operator should do about it, in one line.
    pub action: &'static str,
    /// Other spellings brokers use for the same reason.
    pub aliases: &'static [&'static str],
}
