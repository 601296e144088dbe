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

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Where an event came from (the `broker` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Broker {
    Emqx,
    AwsIot,
    AzureEventGrid,
    Vernemq,
}

impl Broker {
    pub fn as_str(self) -> &'static str {
        match self {
            Broker::Emqx => "emqx",
            Broker::AwsIot => "aws-iot",
            Broker::AzureEventGrid => "azure-eventgrid",
            Broker::Vernemq => "vernemq",
        }
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
