//! Other brokers' lifecycle events, as their documentation shows them, read into connaudit's
//! fields: event type, client, time, reason through the catalog, who ended the connection,
//! the broker; and `peek` (ingest's fast path) agrees with the full parse on each.

use connaudit_model::{peek, Broker, Category, EventType, Initiator, ParsedEvent, SourceFormats, TopicMap};

/// What a payload must become.
struct Want {
    event: EventType,
    clientid: &'static str,
    broker: &'static str,
    ts: Option<i64>,
    reason: Option<(&'static str, Category)>,
    initiator: Option<Initiator>,
}

fn check(payload: &str, topic: Option<&str>, want: Want) {
    let topics = TopicMap::default();
    let e = ParsedEvent::parse(payload.as_bytes(), topic, &topics).unwrap_or_else(|err| panic!("{err}: {payload}"));
    assert_eq!(
        (e.event, e.clientid.as_str(), e.broker.as_str()),
        (want.event, want.clientid, want.broker),
        "{payload}"
    );
    assert_eq!(e.time_field("timestamp").map(|(ms, _)| ms), want.ts, "{payload}");
    let reason = e.reason().map(|r| (r.name, r.category));
    assert_eq!(reason.as_ref().map(|(n, c)| (&**n, *c)), want.reason, "{payload}");
    assert_eq!(e.initiator(), want.initiator, "{payload}");
    assert_eq!(peek(payload.as_bytes(), topic, &topics).unwrap(), (e.event, e.clientid.clone()), "peek: {payload}");
}

// AWS IoT Core, "Lifecycle events" in its developer guide.
#[test]
fn aws_iot_core_connect_disconnect_and_connect_failed() {
    let connected = r#"{"clientId":"186b5","timestamp":1573002230757,"eventType":"connected",
        "sessionIdentifier":"a4666d2a7d844ae4ac5d7b38c9cb7967","principalIdentifier":"12345678901234567890123456789012",
        "ipAddress":"192.0.2.0","versionNumber":0}"#;
    check(
        connected,
        Some("$aws/events/presence/connected/186b5"),
        Want {
            event: EventType::Connected,
            clientid: "186b5",
            broker: "aws-iot",
            ts: Some(1_573_002_230_757),
            reason: None,
            initiator: None,
        },
    );
    let disconnected = r#"{"clientId":"186b5","timestamp":1573002340451,"eventType":"disconnected",
        "sessionIdentifier":"a4666d2a7d844ae4ac5d7b38c9cb7967","principalIdentifier":"12345678901234567890123456789012",
        "clientInitiatedDisconnect":true,"disconnectReason":"CLIENT_INITIATED_DISCONNECT","versionNumber":0}"#;
    check(
        disconnected,
        None,
        Want {
            event: EventType::Disconnected,
            clientid: "186b5",
            broker: "aws-iot",
            ts: Some(1_573_002_340_451),
            reason: Some(("normal", Category::Normal)),
            initiator: Some(Initiator::Client),
        },
    );
    let lost = disconnected.replace("true", "false").replace("CLIENT_INITIATED_DISCONNECT", "MQTT_KEEP_ALIVE_TIMEOUT");
    check(
        &lost,
        None,
        Want {
            event: EventType::Disconnected,
            clientid: "186b5",
            broker: "aws-iot",
            ts: Some(1_573_002_340_451),
            reason: Some(("keepalive_timeout", Category::Network)),
            initiator: Some(Initiator::Network),
        },
    );
    for (aws, name, category, initiator) in [
        ("DUPLICATE_CLIENTID", "takenover", Category::SessionConflict, Initiator::Server),
        ("API_INITIATED_DISCONNECT", "kicked", Category::Admin, Initiator::Admin),
        ("THROTTLED", "message_rate_too_high", Category::Capacity, Initiator::Server),
        ("AUTH_ERROR", "not_authenticated", Category::Authentication, Initiator::Server),
        ("CONNECTION_LOST", "tcp_closed", Category::Network, Initiator::Network),
    ] {
        let p = lost.replace("MQTT_KEEP_ALIVE_TIMEOUT", aws);
        check(
            &p,
            None,
            Want {
                event: EventType::Disconnected,
                clientid: "186b5",
                broker: "aws-iot",
                ts: Some(1_573_002_340_451),
                reason: Some((name, category)),
                initiator: Some(initiator),
            },
        );
    }
    let failed = r#"{"clientId":"186b5","timestamp":1573002230757,"eventType":"connect_failed",
        "connectFailureReason":"AUTHORIZATION_FAILED","principalIdentifier":"12345678901234567890123456789012",
        "ipAddress":"192.0.2.0"}"#;
    check(
        failed,
        None,
        Want {
            event: EventType::Connack,
            clientid: "186b5",
            broker: "aws-iot",
            ts: Some(1_573_002_230_757),
            reason: Some(("not_authorized", Category::Authorization)),
            initiator: None,
        },
    );
}

// Azure Event Grid's MQTT broker: the Event Grid schema (an array of one, as delivered), and
// CloudEvents 1.0.
#[test]
fn azure_event_grid_in_both_envelopes() {
    let event_grid = r#"{"id":"6f1b70b8-557a-4865-9a1c-94cc3def93db",
        "topic":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myrg/providers/Microsoft.EventGrid/namespaces/myns",
        "subject":"clientAuthenticationName/client1/clientSessionName/session1",
        "eventType":"Microsoft.EventGrid.MQTTClientSessionConnected","eventTime":"2023-07-29T01:14:34.2048108Z",
        "data":{"namespaceName":"myns","clientAuthenticationName":"client1","clientSessionName":"session1","sequenceNumber":1},
        "dataVersion":"1","metadataVersion":"1"}"#;
    check(
        event_grid,
        None,
        Want {
            event: EventType::Connected,
            clientid: "session1",
            broker: "azure-eventgrid",
            ts: Some(1_690_593_274_204),
            reason: None,
            initiator: None,
        },
    );
    let cloud = r#"{"specversion":"1.0","id":"8d9a5d2f-cd6e-4b9c-8d4e-6e3d0e2f9a11",
        "source":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myrg/providers/Microsoft.EventGrid/namespaces/myns",
        "subject":"clientAuthenticationName/client1/clientSessionName/session1",
        "type":"Microsoft.EventGrid.MQTTClientSessionDisconnected","time":"2023-07-29T01:14:35.0000000Z",
        "data":{"namespaceName":"myns","clientAuthenticationName":"client1","clientSessionName":"session1",
        "sequenceNumber":"2","disconnectionReason":"SessionTakenOver"}}"#;
    check(
        cloud,
        None,
        Want {
            event: EventType::Disconnected,
            clientid: "session1",
            broker: "azure-eventgrid",
            ts: Some(1_690_593_275_000),
            reason: Some(("takenover", Category::SessionConflict)),
            initiator: Some(Initiator::Server),
        },
    );
    for (azure, name, initiator) in [
        ("ClientInitiatedDisconnect", "normal", Initiator::Client),
        ("ConnectionLost", "tcp_closed", Initiator::Network),
        ("ClientAuthenticationError", "not_authenticated", Initiator::Server),
        ("IpForbidden", "ip_forbidden", Initiator::Server),
        ("SessionOverflow", "session_overflow", Initiator::Server),
        ("QuotaExceeded", "quota_exceeded", Initiator::Server),
    ] {
        let p = cloud.replace("SessionTakenOver", azure);
        let e = ParsedEvent::parse(p.as_bytes(), None, &TopicMap::default()).unwrap();
        assert_eq!((&*e.reason().unwrap().name, e.initiator()), (name, Some(initiator)), "{azure}");
    }
    // Other Event Grid events are not client lifecycle events.
    let other = event_grid.replace("MQTTClientSessionConnected", "MQTTClientCreatedOrUpdated");
    let err = ParsedEvent::parse(other.as_bytes(), None, &TopicMap::default()).unwrap_err();
    assert_eq!(err.kind(), "unknown_event_type");
}

// VerneMQ's webhooks: the body of on_register, on_client_offline, on_client_gone; the hook
// decides the type (the webhook's path or the MQTT topic it is republished to).
#[test]
fn vernemq_webhook_bodies() {
    let register =
        r#"{"peer_addr":"127.0.0.1","peer_port":8888,"username":"username","mountpoint":"","client_id":"client-id"}"#;
    let topics = TopicMap::new(vec![
        ("on_register".into(), EventType::Connected),
        ("on_client_offline".into(), EventType::Disconnected),
    ]);
    let e = ParsedEvent::parse(register.as_bytes(), Some("vernemq/on_register"), &topics).unwrap();
    assert_eq!((e.event, e.clientid.as_str(), e.broker.as_str()), (EventType::Connected, "client-id", "vernemq"));
    assert_eq!(e.str_field("peername"), Some("127.0.0.1:8888"));
    let offline = r#"{"mountpoint":"","client_id":"client-id"}"#;
    let e = ParsedEvent::parse(offline.as_bytes(), Some("vernemq/on_client_offline"), &topics).unwrap();
    assert_eq!((e.event, e.initiator()), (EventType::Disconnected, Some(Initiator::Unknown)));
    // The hook names are known without a mapping: as a topic's last level, or as ingest passes
    // the webhook's `vernemq-hook` header.
    for (hook, want) in [("on_register", EventType::Connected), ("on_client_gone", EventType::Disconnected)] {
        let e = ParsedEvent::parse(offline.as_bytes(), Some(hook), &TopicMap::default()).unwrap();
        assert_eq!(e.event, want, "{hook}");
    }
}

#[test]
fn emqx_stays_emqx() {
    let p = r#"{"clientid":"c","event":"client.disconnected","reason":"normal","timestamp":1700000000000}"#;
    check(
        p,
        None,
        Want {
            event: EventType::Disconnected,
            clientid: "c",
            broker: "emqx",
            ts: Some(1_700_000_000_000),
            reason: Some(("normal", Category::Normal)),
            initiator: Some(Initiator::Client),
        },
    );
}

// HiveMQ has no lifecycle JSON of its own: an extension's `ClientLifecycleEventListener`
// publishes one per call, `event` the method, the rest the SDK getters' names
// (docs/ARCHITECTURE.md, "Source formats"). Reason codes as `DisconnectedReasonCode` names or
// MQTT 5 numbers.
#[test]
fn hivemq_extension_listener_calls() {
    let base = r#"{"event":"METHOD","clientId":"dev-7","timestamp":1733130000123,"node":"hivemq-1",
        "inetAddress":"10.4.0.9","mqttVersion":"V_5","userName":"fleet"REASON}"#;
    let payload = |method: &str, reason: &str| base.replace("METHOD", method).replace("REASON", reason);
    type Case = (&'static str, &'static str, EventType, Option<(&'static str, Category)>, Option<Initiator>);
    let cases: [Case; 11] = [
        ("onAuthenticationSuccessful", "", EventType::Connected, None, None),
        (
            "onAuthenticationFailedDisconnect",
            r#","reasonCode":"BAD_USER_NAME_OR_PASSWORD""#,
            EventType::Connack,
            Some(("bad_username_or_password", Category::Authentication)),
            None,
        ),
        (
            "onAuthenticationFailedDisconnect",
            "",
            EventType::Connack,
            Some(("not_authorized", Category::Authorization)),
            None,
        ),
        (
            "onServerInitiatedDisconnect",
            r#","reasonCode":"CLIENT_IDENTIFIER_NOT_VALID""#,
            EventType::Connack,
            Some(("client_identifier_not_valid", Category::ClientId)),
            None,
        ),
        (
            "onServerInitiatedDisconnect",
            r#","reasonCode":"SESSION_TAKEN_OVER","reasonString":"Another client connected with the same id""#,
            EventType::Disconnected,
            Some(("takenover", Category::SessionConflict)),
            Some(Initiator::Server),
        ),
        (
            "onServerInitiatedDisconnect",
            r#","reasonCode":"ADMINISTRATIVE_ACTION""#,
            EventType::Disconnected,
            Some(("kicked", Category::Admin)),
            Some(Initiator::Admin),
        ),
        (
            "onServerInitiatedDisconnect",
            r#","reasonCode":141"#,
            EventType::Disconnected,
            Some(("keepalive_timeout", Category::Network)),
            Some(Initiator::Network),
        ),
        (
            "onServerInitiatedDisconnect",
            r#","reasonCode":"SERVER_BUSY","connected":false"#,
            EventType::Connack,
            Some(("server_busy", Category::Capacity)),
            None,
        ),
        (
            "onClientInitiatedDisconnect",
            "",
            EventType::Disconnected,
            Some(("normal", Category::Normal)),
            Some(Initiator::Client),
        ),
        (
            "onConnectionLost",
            "",
            EventType::Disconnected,
            Some(("tcp_closed", Category::Network)),
            Some(Initiator::Network),
        ),
        (
            "onDisconnect",
            r#","reasonCode":"TOPIC_FILTER_INVALID""#,
            EventType::Disconnected,
            Some(("topic_filter_invalid", Category::Protocol)),
            Some(Initiator::Server),
        ),
    ];
    for (method, reason, event, want_reason, initiator) in cases {
        let p = payload(method, reason);
        check(
            &p,
            None,
            Want {
                event,
                clientid: "dev-7",
                broker: "hivemq",
                ts: Some(1_733_130_000_123),
                reason: want_reason,
                initiator,
            },
        );
        let e = ParsedEvent::parse(p.as_bytes(), None, &TopicMap::default()).unwrap();
        assert_eq!((e.str_field("peername"), e.str_field("username")), (Some("10.4.0.9"), Some("fleet")), "{p}");
    }
    // A numeric CONNACK code is MQTT 5's, whatever version the client speaks.
    let p = payload("onAuthenticationFailedDisconnect", r#","reasonCode":138"#).replace("V_5", "V_3_1_1");
    let e = ParsedEvent::parse(p.as_bytes(), None, &TopicMap::default()).unwrap();
    assert_eq!(e.reason().map(|r| r.name.into_owned()), Some("banned".to_string()));
    // A CONNECT received is not an outcome.
    let p = payload("onMqttConnectionStart", "");
    let err = ParsedEvent::parse(p.as_bytes(), None, &TopicMap::default()).unwrap_err();
    assert_eq!(err.kind(), "unknown_event_type", "{err}");
}

// TDMQ for MQTT speaks EMQX's shape: only the topic's `--source-format` names it; a topic set
// to one broker refuses another's shape.
#[test]
fn source_format_names_what_the_shape_cannot() {
    let emqx = r#"{"clientid":"c","event":"client.connected","timestamp":1700000000000}"#;
    let e = ParsedEvent::parse(emqx.as_bytes(), None, &TopicMap::default()).unwrap();
    assert_eq!(e.clone().from_source(Broker::Tdmq).unwrap().broker, Broker::Tdmq);
    assert_eq!(e.clone().from_source(Broker::Emqx).unwrap().broker, Broker::Emqx);
    let err = e.from_source(Broker::AwsIot).unwrap_err();
    assert_eq!(err.kind(), "wrong_format", "{err}");
    let formats = SourceFormats::parse(&["$share/g/tdmq/+/events/#=tdmq".into(), "aws/#=aws".into()]).unwrap();
    assert_eq!(formats.lookup("tdmq/eu/events/client_connected"), Some(Broker::Tdmq));
    assert_eq!(formats.lookup("aws/x"), Some(Broker::AwsIot));
    assert_eq!(formats.lookup("tdmq/eu/other"), None);
    assert!(SourceFormats::parse(&["x=mosquitto".into()]).unwrap_err().contains("expected one of emqx, tdmq"));
}
