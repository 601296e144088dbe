//! EMQX-shaped event payloads, as a rule `SELECT * FROM "$events/..."` republishes them. `peer`
//! is the connection's address: the device's, with the source port of that connection.

use serde_json::{json, Value};

use crate::fleet::{Device, Region};

pub fn connack(d: &Device, peer: &str, region: &Region, reason_code: Value, now: i64) -> Value {
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
        "conn_props": {},
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
