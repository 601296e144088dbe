//! The reasons the simulator sends, as a broker spells them (a name, or a number as VerneMQ
//! and HiveMQ do), and the name the reason catalog gives them: the ground truth.

use serde_json::{json, Value};

use crate::fleet::{Codes, Device};

/// How a connect attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connack {
    Success,
    BadCredentials,
    NotAuthorized,
    ServerBusy,
    ServerUnavailable,
}

impl Connack {
    pub fn failed(self) -> bool {
        self != Connack::Success
    }

    /// A refusal as a HiveMQ listener reports it: the method, `DisconnectedReasonCode` and the
    /// catalog's name (HiveMQ answers with MQTT 5 names whatever the client speaks).
    pub fn hivemq(self) -> Option<(&'static str, &'static str, &'static str)> {
        use Connack::*;
        match self {
            Success => None,
            BadCredentials => {
                Some(("onAuthenticationFailedDisconnect", "BAD_USER_NAME_OR_PASSWORD", "bad_username_or_password"))
            }
            NotAuthorized => Some(("onAuthenticationFailedDisconnect", "NOT_AUTHORIZED", "not_authorized")),
            ServerBusy => Some(("onServerInitiatedDisconnect", "SERVER_BUSY", "server_busy")),
            ServerUnavailable => Some(("onServerInitiatedDisconnect", "SERVER_UNAVAILABLE", "server_unavailable")),
        }
    }

    /// (the `reason_code` field, the catalog's name) for this device's broker and protocol.
    pub fn spelled(self, device: &Device) -> (Value, &'static str) {
        use Connack::*;
        match (device.codes, device.proto_ver) {
            (Codes::Names, _) => {
                let name = match self {
                    Success => "success",
                    BadCredentials => "bad_username_or_password",
                    NotAuthorized => "not_authorized",
                    ServerBusy => "server_busy",
                    ServerUnavailable => "server_unavailable",
                };
                (json!(name), name)
            }
            (Codes::Numbers, 5) => match self {
                Success => (json!(0), "success"),
                BadCredentials => (json!(0x86), "bad_username_or_password"),
                NotAuthorized => (json!(0x87), "not_authorized"),
                ServerBusy => (json!(0x89), "server_busy"),
                ServerUnavailable => (json!(0x88), "server_unavailable"),
            },
            // MQTT 3.1.1 return codes: no "busy", the server is just unavailable. The catalog
            // names each like the MQTT 5.0 code of the same outcome.
            (Codes::Numbers, _) => match self {
                Success => (json!(0), "success"),
                BadCredentials => (json!(4), "bad_username_or_password"),
                NotAuthorized => (json!(5), "not_authorized"),
                ServerBusy | ServerUnavailable => (json!(3), "server_unavailable"),
            },
        }
    }
}

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    Normal,
    KeepaliveTimeout,
    TcpClosed,
    Takenover,
}

impl Disconnect {
    pub fn abnormal(self) -> bool {
        self != Disconnect::Normal
    }

    /// (the `reason` field, the catalog's name).
    pub fn spelled(self, device: &Device) -> (Value, &'static str) {
        use Disconnect::*;
        let name = match self {
            Normal => "normal",
            KeepaliveTimeout => "keepalive_timeout",
            TcpClosed => "tcp_closed",
            Takenover => "takenover",
        };
        let number = match self {
            Normal => Some(0x00),
            KeepaliveTimeout => Some(0x8D),
            Takenover => Some(0x8E),
            // A closed socket has no DISCONNECT code; brokers name it.
            TcpClosed => None,
        };
        match (device.codes, number) {
            (Codes::Numbers, Some(n)) => (json!(n), name),
            _ => (json!(name), name),
        }
    }
}

impl Disconnect {
    /// AWS IoT Core's `disconnectReason`, whether the client initiated it, and the catalog's name.
    pub fn aws(self) -> (&'static str, bool, &'static str) {
        match self {
            Disconnect::Normal => ("CLIENT_INITIATED_DISCONNECT", true, "normal"),
            Disconnect::KeepaliveTimeout => ("MQTT_KEEP_ALIVE_TIMEOUT", false, "keepalive_timeout"),
            Disconnect::TcpClosed => ("CONNECTION_LOST", false, "tcp_closed"),
            Disconnect::Takenover => ("DUPLICATE_CLIENTID", false, "takenover"),
        }
    }

    /// The HiveMQ listener method, its `reasonCode` (none for a lost connection) and the
    /// catalog's name.
    pub fn hivemq(self, device: &Device) -> (&'static str, Option<Value>, &'static str) {
        let code = |name: &str, number: u8| match device.codes {
            Codes::Numbers => Some(json!(number)),
            Codes::Names => Some(json!(name)),
        };
        match self {
            Disconnect::Normal => ("onClientInitiatedDisconnect", code("NORMAL_DISCONNECTION", 0), "normal"),
            Disconnect::KeepaliveTimeout => {
                ("onServerInitiatedDisconnect", code("KEEP_ALIVE_TIMEOUT", 0x8D), "keepalive_timeout")
            }
            Disconnect::TcpClosed => ("onConnectionLost", None, "tcp_closed"),
            Disconnect::Takenover => ("onServerInitiatedDisconnect", code("SESSION_TAKEN_OVER", 0x8E), "takenover"),
        }
    }

    /// Azure Event Grid's `disconnectionReason` and the catalog's name: it has no keepalive
    /// reason, a lost connection is all it says.
    pub fn azure(self) -> (&'static str, &'static str) {
        match self {
            Disconnect::Normal => ("ClientInitiatedDisconnect", "normal"),
            Disconnect::KeepaliveTimeout | Disconnect::TcpClosed => ("ConnectionLost", "tcp_closed"),
            Disconnect::Takenover => ("SessionTakenOver", "takenover"),
        }
    }
}
