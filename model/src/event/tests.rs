use serde_json::json;

use super::*;
use crate::catalog::{Category, Protocol, Reason, ReasonKind};

fn parse(payload: &str, topic: Option<&str>) -> Result<ParsedEvent> {
    ParsedEvent::parse(payload.as_bytes(), topic, &TopicMap::default())
}

#[test]
fn select_star_payloads_keep_what_connaudit_reads() {
    let connack = r#"{"reason_code":"success","clientid":"c1","username":"u","peername":"10.1.2.3:5000",
        "sockname":"0.0.0.0:1883","proto_name":"MQTT","proto_ver":5,"keepalive":60,"clean_start":true,
        "expiry_interval":0,"conn_props":{},"connected_at":1645003578856,"timestamp":1645003578856,
        "node":"emqx@127.0.0.1","event":"client.connack","vendor_extra":{"a":1}}"#;
    let full = ParsedEvent::parse_in_full(connack.as_bytes(), None, None, &TopicMap::default()).unwrap();
    assert_eq!(full.field("vendor_extra"), Some(&json!({"a": 1})));
    let e = parse(connack, None).unwrap();
    assert_eq!(e.event, EventType::Connack);
    assert_eq!(e.clientid, "c1");
    assert_eq!(e.field("peername"), Some(&json!("10.1.2.3:5000")));
    assert_eq!(e.i64_field("proto_ver"), Some(5));
    assert_eq!(e.reason().unwrap().name, "success");
    // A CONNACK that names no reason is not a success.
    for missing in [r#""reason_code":null,"#, ""] {
        let text = format!(r#"{{{missing}"clientid":"c1","event":"client.connack","timestamp":1645003578856}}"#);
        let r = parse(&text, None).unwrap().reason().unwrap();
        assert_eq!((&*r.name, r.category, r.is_failure), ("no_reason_code", Category::Unknown, true), "{text}");
    }

    let connected = r#"{"clientid":"c1","username":"u","mountpoint":"undefined","peername":"10.1.2.3:5000",
        "sockname":"0.0.0.0:1883","proto_name":"MQTT","proto_ver":4,"keepalive":60,"clean_start":false,
        "expiry_interval":7200,"is_bridge":false,"receive_maximum":32,"client_attrs":{"region":"eu"},
        "connected_at":1645003578856,"conn_props":{},"timestamp":1645003578857,"node":"n","event":"client.connected"}"#;
    let e = parse(connected, Some("anything")).unwrap();
    assert_eq!(e.event, EventType::Connected);
    assert_eq!(e.reason(), None);

    let disconnected = r#"{"reason":"keepalive_timeout","clientid":"c1","username":"u","peername":"[::1]:5000",
        "sockname":"[::]:1883","proto_name":"MQTT","proto_ver":5,"disconnected_at":1645003578999,
        "connected_at":1645003578856,"disconn_props":{},"client_attrs":{},"timestamp":1645003578999,
        "node":"n","event":"client.disconnected"}"#;
    let e = parse(disconnected, None).unwrap();
    assert_eq!(e.event, EventType::Disconnected);
    let r = e.reason().unwrap();
    assert_eq!((&*r.name, r.category, r.is_failure), ("keepalive_timeout", Category::Network, true));
}

#[test]
fn event_type_resolution_order() {
    // The `event` field beats the topic.
    let e = parse(r#"{"clientid":"c","event":"client.disconnected","reason":"normal"}"#, Some("client_connack"));
    assert_eq!(e.unwrap().event, EventType::Disconnected);
    // A column subset without `event`: the topic decides, even with misleading fields.
    let cases = [
        ("client_connack", EventType::Connack),
        ("client_connected", EventType::Connected),
        ("client_disconnected", EventType::Disconnected),
        ("site-a/events/client_disconnected", EventType::Disconnected),
    ];
    for (topic, want) in cases {
        let e = parse(r#"{"clientid":"c","connected_at":1700000000000}"#, Some(topic)).unwrap();
        assert_eq!(e.event, want, "topic {topic}");
    }
    // Neither: the fields decide.
    let by_fields = [
        (r#"{"clientid":"c","reason_code":"success","timestamp":1700000000000}"#, EventType::Connack),
        (r#"{"clientid":"c","reason":"normal","disconnected_at":1700000000000}"#, EventType::Disconnected),
        (r#"{"clientid":"c","connected_at":1700000000000}"#, EventType::Connected),
    ];
    for (payload, want) in by_fields {
        assert_eq!(parse(payload, Some("unmapped/topic")).unwrap().event, want, "{payload}");
    }
}

#[test]
fn configured_topic_map_wins_over_defaults() {
    let map = TopicMap::new(vec![TopicMap::parse_entry("acme/in=client_connected").unwrap()]);
    let e = ParsedEvent::parse(br#"{"clientid":"c","reason":"x"}"#, Some("acme/in"), &map).unwrap();
    assert_eq!(e.event, EventType::Connected);
    assert!(TopicMap::parse_entry("no-equals").is_err());
    assert!(TopicMap::parse_entry("t=message.publish").is_err());
}

#[test]
fn malformed_payloads_are_rejected_with_their_kind() {
    let cases = [
        ("", "not_json"),
        ("{not json", "not_json"),
        ("\u{0}\u{1}", "not_json"),
        ("[1,2]", "not_object"),
        ("\"clientid\"", "not_object"),
        ("42", "not_object"),
        ("null", "not_object"),
        (r#"{"reason_code":"success"}"#, "missing_clientid"),
        (r#"{"clientid":"","reason_code":"success"}"#, "missing_clientid"),
        (r#"{"clientid":7,"reason_code":"success"}"#, "missing_clientid"),
        (r#"{"clientid":"c","username":"u"}"#, "unknown_event_type"),
        (r#"{"clientid":"c","event":"message.publish"}"#, "unknown_event_type"),
    ];
    for (payload, kind) in cases {
        let err = parse(payload, Some("unmapped")).unwrap_err();
        assert_eq!(err.kind(), kind, "{payload:?}: {err}");
        assert!(Error::KINDS.contains(&err.kind()));
    }
}

#[test]
fn every_catalog_entry_resolves_by_name_and_by_code() {
    for r in Reason::all() {
        let proto = match r.protocol {
            Protocol::Mqtt311 => Some(4),
            _ => Some(5),
        };
        let resolve = |v: serde_json::Value| match r.kind {
            ReasonKind::Connack => catalog::resolve_connack(&v, proto),
            ReasonKind::Disconnect => catalog::resolve_disconnect(&v),
        };
        let by_name = resolve(json!(r.name));
        assert_eq!(by_name.entry, Some(r), "name {}", r.name);
        for alias in r.aliases {
            assert_eq!(resolve(json!(alias)).category, r.category, "alias {alias}");
        }
        if let Some(code) = r.code {
            let by_code = resolve(json!(code));
            assert_eq!(by_code.code, Some(code));
            assert_eq!(by_code.category, r.category, "code {code:#x} of {}", r.name);
            assert_eq!(resolve(json!(format!("{code:#04x}"))).code, Some(code));
        }
        assert!(!r.action.is_empty() && r.action.ends_with('.'), "{}", r.name);
        assert_eq!(r.is_failure, !matches!(r.category, Category::Success | Category::Normal | Category::Admin));
    }
}

#[test]
fn catalog_covers_the_protocol_tables() {
    let codes = |kind, protocol| {
        let mut v: Vec<u8> =
            Reason::all().iter().filter(|r| r.kind == kind && r.protocol == protocol).filter_map(|r| r.code).collect();
        v.sort();
        v
    };
    assert_eq!(codes(ReasonKind::Connack, Protocol::Mqtt311), vec![0, 1, 2, 3, 4, 5]);
    let v5 = vec![
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A,
        0x9B, 0x9C, 0x9D, 0x9F,
    ];
    assert_eq!(codes(ReasonKind::Connack, Protocol::Mqtt5), v5);
    let seeds = [
        "normal",
        "kicked",
        "keepalive_timeout",
        "not_authorized",
        "not_authenticated",
        "tcp_closed",
        "internal_error",
        "discarded",
        "takenover",
        "ping_without_connect",
        "authentication_expired",
        "too_many_connection",
        "go_away",
        "client_id_too_long",
        "client_id_required",
        "client_id_invalid",
        "bad_will_message",
        "server_internal_error",
    ];
    for name in seeds {
        assert!(catalog::resolve_disconnect(&json!(name)).entry.is_some(), "{name}");
    }
}

#[test]
fn protocol_version_and_spelling_pick_the_entry() {
    // One outcome, one name; the protocol's own code stays.
    let v3 = catalog::resolve_connack(&json!(5), Some(4));
    assert_eq!((&*v3.name, v3.code, v3.category), ("not_authorized", Some(5), Category::Authorization));
    let v5 = catalog::resolve_connack(&json!(135), Some(5));
    assert_eq!((&*v5.name, v5.code), ("not_authorized", Some(135)));
    let accepted = catalog::resolve_connack(&json!(0), Some(4));
    assert_eq!((&*accepted.name, accepted.entry.map(|e| e.protocol)), ("success", Some(Protocol::Mqtt311)));
    assert_eq!(catalog::resolve_connack(&json!("connection_accepted"), Some(4)).name, "success");
    assert_eq!(catalog::resolve_connack(&json!("unauthorized_client"), Some(4)).code, Some(5));
    assert_eq!(catalog::resolve_connack(&json!(0), None).name, "success");
    assert_eq!(catalog::resolve_connack(&json!("0x89"), None).name, "server_busy");
    assert_eq!(catalog::resolve_connack(&json!("Server Busy"), None).name, "server_busy");
    assert_eq!(catalog::resolve_connack(&json!("server_unavailable"), Some(4)).code, Some(3));
    assert_eq!(catalog::resolve_connack(&json!("server_unavailable"), Some(5)).code, Some(0x88));
    assert_eq!(catalog::resolve_connack(&json!("unacceptable_protocol_version"), None).code, Some(0x84));
    for variant in ["takeovered", "taken_over", "TakenOver", "session_taken_over", "142"] {
        assert_eq!(catalog::resolve_disconnect(&json!(variant)).name, "takenover", "{variant}");
    }
    assert_eq!(catalog::resolve_disconnect(&json!(0x98)).name, "kicked");
}

#[test]
fn unknown_reasons_are_kept_verbatim() {
    let r = catalog::resolve_disconnect(&json!("Sock_Error"));
    assert_eq!((&*r.name, r.category, r.is_failure, r.entry), ("Sock_Error", Category::Unknown, true, None));
    let r = catalog::resolve_connack(&json!(0x8B), Some(5));
    assert_eq!((&*r.name, r.code, r.category), ("139", Some(0x8B), Category::Unknown));
}

#[test]
fn peek_agrees_with_the_full_parser() {
    let payloads = [
        r#"{"reason_code":"success","clientid":"c1","event":"client.connack","x":{"deep":[1,{"a":"\u00e9"}]}}"#,
        r#"{"clientid":"c\"2","connected_at":1}"#,
        r#"{"clientid":"c3","reason":"normal"}"#,
        r#"{"clientid":"c4","reason":null,"connected_at":5}"#,
        r#"{"clientid":"c5","event":7,"reason_code":0}"#,
        r#"{"clientid":"c6","event":"message.publish"}"#,
        r#"{"clientid":"c7","username":"u"}"#,
        r#"  {"clientid":"","reason_code":"success"}"#,
        r#"{"clientid":null,"reason_code":"success"}"#,
        r#"{"clientid":["a"],"reason_code":"success"}"#,
        r#"{"clientid":"c8","reason_code":"success""#,
        r#"{"clientid":"c9","reason_code":0,"timestamp":1700000000}"#,
        r#"{"clientid":"c10","reason_code":0,"timestamp":"1700000000123"}"#,
        r#"{"clientid":"c11","reason":"normal","disconnected_at":48000000000000}"#,
        r#"{"clientid":"c12","timestamp":"later","event":"client.connected"}"#,
        r#"{"clientid":"c13","connected_at":null,"timestamp":null}"#,
        "[1,2]",
        "\"text\"",
        "not json",
        "",
    ];
    let topics = TopicMap::default();
    for payload in payloads {
        for topic in [None, Some("client_disconnected"), Some("unmapped")] {
            let full = ParsedEvent::parse(payload.as_bytes(), topic, &topics).map(|e| (e.event, e.clientid));
            let quick = crate::peek(payload.as_bytes(), topic, &topics);
            assert_eq!(
                quick.as_ref().map_err(Error::kind),
                full.as_ref().map_err(Error::kind),
                "{payload} on {topic:?}"
            );
            assert_eq!(quick.ok(), full.ok(), "{payload} on {topic:?}");
        }
    }
}

#[test]
fn attributes_come_from_client_attrs_user_properties_and_aws_principals() {
    let emqx = r#"{"event":"client.connack","clientid":"c","reason_code":0,"timestamp":1700000000000,
        "client_attrs":{"tenant":"acme","fw":"from-attrs","n":3},
        "conn_props":{"User-Property":{"fw":"2.4.1","carrier":"telia"},"Session-Expiry-Interval":60}}"#;
    let want = r#"{"carrier":"telia","fw":"from-attrs","n":"3","tenant":"acme"}"#;
    for ev in [
        parse(emqx, None).unwrap(),
        ParsedEvent::parse_in_full(emqx.as_bytes(), None, None, &TopicMap::default()).unwrap(),
    ] {
        assert_eq!(ev.attributes().as_deref(), Some(want));
    }
    let pairs = r#"{"clientid":"c","reason_code":0,"conn_props":{"User-Property":[["fw","1.0"],{"name":"hw","value":"b2"},{"key":"os","value":"rtos"}]}}"#;
    assert_eq!(parse(pairs, None).unwrap().attributes().as_deref(), Some(r#"{"fw":"1.0","hw":"b2","os":"rtos"}"#));
    // EMQX 5's own rendering: the map, and the same properties as pairs beside it.
    let emqx5 = r#"{"clientid":"c","reason_code":0,"conn_props":{"User-Property":{"fw":"3.0"},"User-Property-Pairs":[{"key":"fw","value":"3.0"}]}}"#;
    assert_eq!(parse(emqx5, None).unwrap().attributes().as_deref(), Some(r#"{"fw":"3.0"}"#));
    assert_eq!(parse(r#"{"clientid":"c","reason_code":0,"conn_props":{}}"#, None).unwrap().attributes(), None);
    let aws = r#"{"clientId":"c","timestamp":1700000000000,"eventType":"connected","sessionIdentifier":"s",
        "principalIdentifier":"12345abcdef","ipAddress":"10.0.0.1","versionNumber":0}"#;
    let ev = parse(aws, Some("$aws/events/presence/connected/c")).unwrap();
    assert_eq!(ev.attributes().as_deref(), Some(r#"{"principal":"12345abcdef"}"#));
    assert_eq!(ev.session_id(), Some("s"));
    assert_eq!(parse(emqx, None).unwrap().session_id(), None);
}

#[test]
fn event_names_take_underscores_for_dots_and_nothing_else() {
    for (name, want) in [
        ("client.connack", EventType::Connack),
        ("client_connack", EventType::Connack),
        ("$events/client_connected", EventType::Connected),
        ("$events/client.disconnected", EventType::Disconnected),
    ] {
        assert_eq!(name.parse::<EventType>(), Ok(want), "{name}");
    }
    for name in [
        "",
        "client",
        "client.connackx",
        "clientxconnack",
        "client.Connack",
        "client..connack",
        "events/client_connack",
    ] {
        assert!(name.parse::<EventType>().is_err(), "{name}");
    }
}

#[test]
fn types_order_as_their_names_do() {
    let mut by_name = EventType::ALL;
    by_name.sort_by_key(|t| t.as_str());
    let mut by_type = EventType::ALL;
    by_type.sort();
    assert_eq!(by_type, by_name);
}
