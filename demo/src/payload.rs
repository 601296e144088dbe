//! EMQX-shaped event payloads, as a rule `SELECT * FROM "$events/..."` republishes them. `peer`
//! is the connection's address: the device's, with the source port of that connection.

use serde_json::{json, Value};

use crate::fleet::{Device, Region};

pub fn connack(d: &Device, peer: &str, region: &Region, reason_code: Value, fw: Option<&str>, now: i64) -> Value {
    let props = fw.map_or_else(|| json!({}), |fw| json!({"User-Property": {"fw": fw}}));
    json!({
        "event": "client.connack",
        "clientid": d.clientid,
        "username": d.username,
        "peername": peer,
        "sockname": "0.0.0.0:1883",
        "proto_name": "MQTT",
        "proto_ver": d.proto_ver,
        "keepalive": 60,
        "clean_start": true,
        "expiry_interval": 0,
        "conn_props": props,
        "reason_code": reason_code,
        "connected_at": now,
        "timestamp": now,
        "node": region.node,
    })
}

pub fn connected(d: &Device, peer: &str, region: &Region, now: i64) -> Value {
    json!({
        "event": "client.connected",
        "clientid": d.clientid,
        "username": d.username,
        "mountpoint": null,
        "peername": peer,
        "sockname": "0.0.0.0:1883",
        "proto_name": "MQTT",
        "proto_ver": d.proto_ver,
        "keepalive": 60,
        "clean_start": true,
        "expiry_interval": 0,
        "is_bridge": false,
        "connected_at": now,
        "conn_props": {},
        "receive_maximum": 32,
        "client_attrs": {},
        "timestamp": now,
        "node": region.node,
    })
}

pub fn disconnected(d: &Device, peer: &str, region: &Region, reason: Value, connected_at: i64, now: i64) -> Value {
    json!({
        "event": "client.disconnected",
        "clientid": d.clientid,
        "username": d.username,
        "reason": reason,
        "peername": peer,
        "sockname": "0.0.0.0:1883",
        "proto_name": "MQTT",
        "proto_ver": d.proto_ver,
        "connected_at": connected_at,
        "disconnected_at": now,
        "disconn_props": {},
        "client_attrs": {},
        "timestamp": now,
        "node": region.node,
    })
}

/// AWS IoT Core's lifecycle events (`$aws/events/presence/...`), as an IoT rule forwards them.
pub mod aws {
    use serde_json::{json, Value};

    use crate::fleet::Device;

    fn ip(peer: &str) -> &str {
        let host = peer.rsplit_once(':').map_or(peer, |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn connected(d: &Device, peer: &str, session: &str, now: i64) -> Value {
        json!({
            "clientId": d.clientid, "timestamp": now, "eventType": "connected",
            "sessionIdentifier": session, "principalIdentifier": d.username,
            "ipAddress": ip(peer), "versionNumber": 0,
        })
    }

    pub fn connect_failed(d: &Device, peer: &str, reason: &str, now: i64) -> Value {
        json!({
            "clientId": d.clientid, "timestamp": now, "eventType": "connect_failed",
            "connectFailureReason": reason, "principalIdentifier": d.username, "ipAddress": ip(peer),
        })
    }

    /// AWS sends no address with a disconnect.
    pub fn disconnected(d: &Device, session: &str, reason: &str, by_client: bool, now: i64) -> Value {
        json!({
            "clientId": d.clientid, "timestamp": now, "eventType": "disconnected",
            "sessionIdentifier": session, "principalIdentifier": d.username,
            "clientInitiatedDisconnect": by_client, "disconnectReason": reason, "versionNumber": 1,
        })
    }
}

/// Azure Event Grid's MQTT client session events, in the Event Grid schema.
pub mod azure {
    use serde_json::{json, Value};

    use crate::fleet::{Device, Region};

    /// `Connected` or `Disconnected` (with its reason); the namespace is the region's node.
    pub fn session(d: &Device, region: &Region, kind: &str, reason: Option<&str>, seq: u64, now: i64) -> Value {
        let time = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default().to_rfc3339();
        let mut data = json!({
            "namespaceName": region.node, "clientAuthenticationName": d.username,
            "clientSessionName": d.clientid, "sequenceNumber": seq,
        });
        if let Some(reason) = reason {
            data["disconnectionReason"] = reason.into();
        }
        json!({
            "id": format!("{}-{seq}", d.clientid),
            "topic": format!("/subscriptions/0/resourceGroups/fleet/providers/Microsoft.EventGrid/namespaces/{}", region.node),
            "subject": format!("clientAuthenticationName/{}/clientSessionName/{}", d.username, d.clientid),
            "eventType": format!("Microsoft.EventGrid.MQTTClientSession{kind}"),
            "eventTime": time, "data": data, "dataVersion": "1", "metadataVersion": "1",
        })
    }
}

/// VerneMQ's webhook bodies: the hook (`on_register`, `on_client_offline`) is not in them.
pub mod vernemq {
    use serde_json::{json, Value};

    use crate::fleet::Device;

    pub fn register(d: &Device, peer: &str) -> Value {
        let (host, port) = peer.rsplit_once(':').unwrap_or((peer, "0"));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        json!({
            "peer_addr": host, "peer_port": port.parse::<u16>().unwrap_or(0), "username": d.username,
            "mountpoint": "", "client_id": d.clientid,
        })
    }

    pub fn offline(d: &Device) -> Value {
        json!({ "mountpoint": "", "client_id": d.clientid })
    }
}

/// What a HiveMQ extension's `ClientLifecycleEventListener` publishes: the method as `event`,
/// the SDK getters' names (docs/ARCHITECTURE.md, "Source formats").
pub mod hivemq {
    use serde_json::{json, Value};

    use crate::fleet::{Device, Region};

    fn ip(peer: &str) -> &str {
        let host = peer.rsplit_once(':').map_or(peer, |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn call(d: &Device, region: &Region, peer: &str, method: &str, reason: Option<Value>, now: i64) -> Value {
        let mut v = json!({
            "event": method, "clientId": d.clientid, "timestamp": now, "node": region.node,
            "inetAddress": ip(peer), "mqttVersion": if d.proto_ver == 5 { "V_5" } else { "V_3_1_1" },
            "userName": d.username,
        });
        if let Some(reason) = reason {
            v["reasonCode"] = reason;
        }
        v
    }

    /// A CONNECT the server refused: it never saw onAuthenticationSuccessful.
    pub fn refused(d: &Device, region: &Region, peer: &str, method: &str, code: &str, now: i64) -> Value {
        let mut v = call(d, region, peer, method, Some(json!(code)), now);
        v["connected"] = json!(false);
        v
    }
}
