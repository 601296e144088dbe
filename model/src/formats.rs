//! Each broker's shape of a lifecycle event, recognised from the payload and rewritten into the
//! fields connaudit reads (EMQX's names: `clientid`, `event`, `timestamp`, `reason_code`,
//! `reason`, `peername`, `username`, `node`), with the broker it came from and, where the
//! payload says so, who ended the connection. The original fields stay beside them.
//!
//! | broker | recognised by | event type from |
//! |---|---|---|
//! | EMQX, TDMQ | `clientid` | `event`, the topic, the fields |
//! | AWS IoT Core | `clientId` and `eventType` (`connected`, `disconnected`, `connect_failed`) | `eventType` |
//! | Azure Event Grid | `eventType` (Event Grid schema) or `type` (CloudEvents 1.0) `Microsoft.EventGrid.MQTT*`, with `data` | the type |
//! | VerneMQ | `client_id` with `mountpoint` (its webhooks' bodies) | the topic (`on_register`, `on_client_offline`, `on_client_gone`) |
//! | HiveMQ | `clientId` and `event` naming a `ClientLifecycleEventListener` method | `event` |
//!
//! TDMQ for MQTT speaks EMQX's shape: only a `--source-format` on its topics tells them apart.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Where an event came from (the `broker` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Broker {
    Emqx,
    AwsIot,
    AzureEventGrid,
    Vernemq,
    Hivemq,
    Tdmq,
}

impl Broker {
    pub const ALL: [Broker; 6] =
        [Broker::Emqx, Broker::Tdmq, Broker::AwsIot, Broker::AzureEventGrid, Broker::Hivemq, Broker::Vernemq];

    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Emqx => "emqx",
            Broker::AwsIot => "aws-iot",
            Broker::AzureEventGrid => "azure-eventgrid",
            Broker::Vernemq => "vernemq",
            Broker::Hivemq => "hivemq",
            Broker::Tdmq => "tdmq",
        }
    }

    /// Whether a payload of `shape` (what `normalize` recognised) may come from this broker:
    /// the same broker, or TDMQ for EMQX's shape.
    pub fn accepts(self, shape: Broker) -> bool {
        self == shape || (self == Broker::Tdmq && shape == Broker::Emqx)
    }
}

impl std::str::FromStr for Broker {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "aws" | "aws-iot-core" => "aws-iot",
            "azure" | "eventgrid" | "event-grid" => "azure-eventgrid",
            other => other,
        };
        Broker::ALL.into_iter().find(|b| b.as_str() == alias).ok_or_else(|| {
            let known: Vec<&str> = Broker::ALL.iter().map(|b| b.as_str()).collect();
            format!("unknown source format `{s}` (expected one of {})", known.join(", "))
        })
    }
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who ended a connection (the `initiator` column of disconnects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    Client,
    Server,
    Network,
    Admin,
    Unknown,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Client => "client",
            Initiator::Server => "server",
            Initiator::Network => "network",
            Initiator::Admin => "admin",
            Initiator::Unknown => "unknown",
        }
    }
}

/// A payload in connaudit's field names, where it came from, and what it says about who
/// ended the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub fields: Map<String, Value>,
    pub broker: Broker,
    /// `Some` when the payload itself says it (AWS's `clientInitiatedDisconnect`).
    pub initiator: Option<Initiator>,
}

const AZURE_EVENTS: &str = "Microsoft.EventGrid.MQTT";

/// Rewrites a payload of any known broker into connaudit's field names. A known shape of an
/// event that is not a client's connect or disconnect (AWS's `subscribed`, Azure's
/// `MQTTClientCreatedOrUpdated`) is an unknown event type.
pub fn normalize(mut fields: Map<String, Value>) -> Result<Normalized> {
    if fields.contains_key("clientid") {
        return Ok(Normalized { fields, broker: Broker::Emqx, initiator: None });
    }
    if let Some(kind) = azure_type(&fields) {
        return azure(fields, kind);
    }
    if fields.contains_key("clientId") && fields.get("eventType").is_some_and(Value::is_string) {
        return aws(fields);
    }
    if let Some(method) = hivemq_method(&fields) {
        return hivemq(fields, method);
    }
    if fields.contains_key("client_id") && fields.contains_key("mountpoint") {
        copy(&mut fields, "client_id", "clientid");
        if let (Some(addr), port) = (fields.get("peer_addr").and_then(Value::as_str), fields.get("peer_port")) {
            let peer = match port.and_then(Value::as_u64) {
                Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
                Some(p) => format!("{addr}:{p}"),
                None => addr.to_string(),
            };
            fields.insert("peername".into(), peer.into());
        }
        return Ok(Normalized { fields, broker: Broker::Vernemq, initiator: None });
    }
    Ok(Normalized { fields, broker: Broker::Emqx, initiator: None })
}

/// What follows `Microsoft.EventGrid.MQTTClientSession` in an Event Grid or CloudEvents
/// envelope's type, or `None` for another payload.
fn azure_type(fields: &Map<String, Value>) -> Option<String> {
    let kind = fields.get("eventType").or_else(|| fields.get("type")).and_then(Value::as_str)?;
    fields.get("data").filter(|d| d.is_object())?;
    kind.strip_prefix(AZURE_EVENTS).map(str::to_string)
}

fn azure(mut fields: Map<String, Value>, kind: String) -> Result<Normalized> {
    let data = fields.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    let event = match kind.as_str() {
        "ClientSessionConnected" => "client.connected",
        "ClientSessionDisconnected" => "client.disconnected",
        _ => {
            return Err(Error::UnknownEventType(format!(
                "Azure Event Grid's `{AZURE_EVENTS}{kind}` is not a client session's connect or disconnect"
            )))
        }
    };
    fields.insert("event".into(), event.into());
    // The session name is the MQTT client identifier; the authentication name who it is.
    if let Some(id) = data.get("clientSessionName") {
        fields.insert("clientid".into(), id.clone());
    }
    if let Some(name) = data.get("clientAuthenticationName") {
        fields.insert("username".into(), name.clone());
    }
    if let Some(ns) = data.get("namespaceName") {
        fields.insert("node".into(), ns.clone());
    }
    if let Some(reason) = data.get("disconnectionReason") {
        fields.insert("reason".into(), reason.clone());
    }
    if let Some(time) = fields.get("eventTime").or_else(|| fields.get("time")).cloned() {
        fields.insert("timestamp".into(), time);
    }
    if let Some(seq) = data.get("sequenceNumber") {
        fields.insert("sequence_number".into(), seq.clone());
    }
    Ok(Normalized { fields, broker: Broker::AzureEventGrid, initiator: None })
}

fn aws(mut fields: Map<String, Value>) -> Result<Normalized> {
    let kind = fields.get("eventType").and_then(Value::as_str).unwrap_or_default().to_string();
    let event = match kind.as_str() {
        "connected" => "client.connected",
        "disconnected" => "client.disconnected",
        // A refused CONNECT: what other brokers announce as an unsuccessful CONNACK.
        "connect_failed" => "client.connack",
        other => {
            return Err(Error::UnknownEventType(format!(
                "AWS IoT Core's `{other}` event is not a connect, a disconnect or a failed connect"
            )))
        }
    };
    fields.insert("event".into(), event.into());
    copy(&mut fields, "clientId", "clientid");
    copy(&mut fields, "principalIdentifier", "username");
    copy(&mut fields, "ipAddress", "peername");
    copy(&mut fields, "disconnectReason", "reason");
    copy(&mut fields, "connectFailureReason", "reason_code");
    let initiator = match fields.get("clientInitiatedDisconnect") {
        Some(Value::Bool(true)) => Some(Initiator::Client),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(Initiator::Client),
        _ => None,
    };
    Ok(Normalized { fields, broker: Broker::AwsIot, initiator })
}

/// The `ClientLifecycleEventListener` methods a HiveMQ extension reports, as `event`.
const HIVEMQ_METHODS: [&str; 6] = [
    "onMqttConnectionStart",
    "onAuthenticationSuccessful",
    "onAuthenticationFailedDisconnect",
    "onClientInitiatedDisconnect",
    "onConnectionLost",
    "onServerInitiatedDisconnect",
];

/// HiveMQ's reason codes that only a CONNACK carries: a server-initiated "disconnect" with
/// one of them is a refused CONNECT (`DisconnectedReasonCode`'s "remaining CONNACK reason
/// codes", and the client id check that happens before a session exists).
const HIVEMQ_CONNACK_ONLY: [&str; 5] = [
    "UNSUPPORTED_PROTOCOL_VERSION",
    "BAD_USER_NAME_OR_PASSWORD",
    "SERVER_UNAVAILABLE",
    "BANNED",
    "CLIENT_IDENTIFIER_NOT_VALID",
];

fn hivemq_method(fields: &Map<String, Value>) -> Option<String> {
    fields.get("clientId")?;
    let method = fields.get("event").and_then(Value::as_str)?;
    (HIVEMQ_METHODS.contains(&method) || method == "onDisconnect").then(|| method.to_string())
}

/// A HiveMQ extension's `ClientLifecycleEventListener` call as JSON: `event` is the method,
/// the other fields are the SDK getters' names (`clientId`, `reasonCode` as the
/// `DisconnectedReasonCode` name or the MQTT 5 number, `reasonString`, `inetAddress`,
/// `mqttVersion`, `userName`, `timestamp`, `node`), and `connected` (false when the server
/// refuses a CONNECT it never accepted).
fn hivemq(mut fields: Map<String, Value>, method: String) -> Result<Normalized> {
    let code = fields.get("reasonCode").cloned();
    let name = code.as_ref().and_then(Value::as_str).map(str::to_ascii_uppercase);
    // `connected: false` (the extension's own mark: no onAuthenticationSuccessful on this
    // connection) says the server answered the CONNECT; else only CONNACK-only codes do.
    let refused = match fields.get("connected") {
        Some(Value::Bool(connected)) => !connected,
        _ => name.as_deref().is_some_and(|n| HIVEMQ_CONNACK_ONLY.contains(&n)),
    };
    let (event, initiator) = match method.as_str() {
        "onAuthenticationSuccessful" => ("client.connected", None),
        "onAuthenticationFailedDisconnect" => ("client.connack", None),
        "onServerInitiatedDisconnect" if refused => ("client.connack", None),
        // The server closed it; the reason says on whose account (a keepalive timeout is the
        // network's, an administrative action an operator's), like other brokers' reasons.
        "onServerInitiatedDisconnect" => {
            let by_reason = code.as_ref().map(|c| {
                let r = crate::catalog::resolve_disconnect(c);
                initiator(r.category, &r.name)
            });
            match by_reason {
                Some(Initiator::Client | Initiator::Unknown) | None => ("client.disconnected", Some(Initiator::Server)),
                Some(other) => ("client.disconnected", Some(other)),
            }
        }
        "onClientInitiatedDisconnect" => ("client.disconnected", Some(Initiator::Client)),
        "onConnectionLost" => ("client.disconnected", Some(Initiator::Network)),
        "onDisconnect" => ("client.disconnected", None),
        other => {
            return Err(Error::UnknownEventType(format!(
                "HiveMQ's `{other}` is a CONNECT received, not its outcome: forward onAuthenticationSuccessful and the disconnects"
            )))
        }
    };
    fields.insert("event".into(), event.into());
    copy(&mut fields, "clientId", "clientid");
    copy(&mut fields, "userName", "username");
    copy(&mut fields, "inetAddress", "peername");
    if let Some(v) = fields.get("mqttVersion").and_then(Value::as_str) {
        let proto: Option<u8> = match v {
            "V_3_1" => Some(3),
            "V_3_1_1" => Some(4),
            "V_5" => Some(5),
            _ => None,
        };
        if let Some(p) = proto {
            fields.insert("proto_ver".into(), p.into());
        }
    }
    let reason = match (event, code) {
        ("client.connack", Some(code)) => Some(("reason_code", code)),
        ("client.connack", None) => Some(("reason_code", Value::from("NOT_AUTHORIZED"))),
        (_, Some(code)) => Some(("reason", code)),
        (_, None) if method == "onConnectionLost" => Some(("reason", Value::from("connection_lost"))),
        (_, None) if method == "onClientInitiatedDisconnect" => Some(("reason", Value::from("normal"))),
        _ => None,
    };
    if let Some((field, value)) = reason {
        fields.insert(field.into(), value);
    }
    // A numeric code is the SDK's MQTT 5 number, whatever version the client speaks.
    if event == "client.connack" && !fields.get("reason_code").is_some_and(Value::is_string) {
        fields.insert("proto_ver".into(), 5.into());
    }
    Ok(Normalized { fields, broker: Broker::Hivemq, initiator })
}

fn copy(fields: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = fields.get(from).cloned() {
        fields.insert(to.into(), v);
    }
}

/// Who ended a connection, from its disconnect reason's category and name, unless the payload
/// said it.
pub fn initiator(category: crate::Category, name: &str) -> Initiator {
    use crate::Category::*;
    match category {
        Normal => Initiator::Client,
        Admin if name == "maximum_connect_time" => Initiator::Server,
        Admin => Initiator::Admin,
        Network => Initiator::Network,
        Unknown => Initiator::Unknown,
        Success => Initiator::Unknown,
        Authentication | Authorization | ClientId | Protocol | Capacity | Redirect | SessionConflict | Server => {
            Initiator::Server
        }
    }
}

/// `--source-format FILTER=FORMAT` entries: which broker's events an MQTT topic carries, for
/// shapes the payload cannot tell apart (TDMQ speaks EMQX's) or to refuse any other shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceFormats(Vec<(String, Broker)>);

impl SourceFormats {
    pub fn parse(entries: &[String]) -> std::result::Result<Self, String> {
        let parse = |s: &String| {
            let (filter, format) =
                s.split_once('=').ok_or_else(|| format!("`{s}` is not TOPIC_FILTER=FORMAT (e.g. '$events/#=tdmq')"))?;
            if filter.is_empty() {
                return Err(format!("`{s}` has no topic filter before `=`"));
            }
            Ok((filter.to_string(), format.parse::<Broker>()?))
        };
        entries.iter().map(parse).collect::<std::result::Result<_, _>>().map(SourceFormats)
    }

    /// The format of the first entry whose filter matches `topic` (MQTT wildcards `+` and `#`;
    /// a `$share/GROUP/` prefix of the filter is ignored).
    pub fn lookup(&self, topic: &str) -> Option<Broker> {
        self.0.iter().find(|(filter, _)| matches(filter, topic)).map(|(_, b)| *b)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn matches(filter: &str, topic: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
        None => filter,
    };
    let (mut f, mut t) = (filter.split('/'), topic.split('/'));
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
