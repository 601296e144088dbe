//! The catalog's data: CONNACK reasons of MQTT 3.1.1 and 5.0, and the disconnect reasons that
//! EMQX and TDMQ report plus the MQTT 5.0 DISCONNECT codes other brokers send as numbers. AWS
//! IoT Core's (`AUTH_ERROR`, `CONNECTION_LOST`, ...) and Azure Event Grid's
//! (`ClientAuthenticationError`, `SessionTakenOver`, ...) names are aliases, in snake case.

use crate::reason::Category::{self, *};
use crate::reason::Protocol::{self, *};
use crate::reason::{Reason, ReasonKind};

const fn connack(
    name: &'static str,
    code: u8,
    protocol: Protocol,
    category: Category,
    action: &'static str,
    aliases: &'static [&'static str],
) -> Reason {
    let is_failure = !matches!(category, Success);
    Reason { name, code: Some(code), kind: ReasonKind::Connack, protocol, is_failure, category, action, aliases }
}

const fn disconnect(
    name: &'static str,
    code: Option<u8>,
    protocol: Protocol,
    category: Category,
    action: &'static str,
    aliases: &'static [&'static str],
) -> Reason {
    // Leaving on purpose (the client, or an operator) is not a failure; everything else is.
    let is_failure = !matches!(category, Normal | Admin);
    Reason { name, code, kind: ReasonKind::Disconnect, protocol, is_failure, category, action, aliases }
}

pub(crate) static REASONS: &[Reason] = &[
    // MQTT 3.1.1 CONNACK return codes, named like the MQTT 5.0 code of the same outcome (its
    // own name an alias), so one outcome is one reason whatever the protocol; the code stays.
    connack("success", 0, Mqtt311, Success, "Nothing to do: the broker accepted the connection.", &["connection_accepted", "accepted"]),
    connack("unsupported_protocol_version", 1, Mqtt311, Protocol, "Configure the client for an MQTT version the broker is set to accept.", &["unacceptable_protocol_version"]),
    connack("client_identifier_not_valid", 2, Mqtt311, ClientId, "Send a client id the broker allows: non-empty when clean session is off, within its length limit.", &["identifier_rejected"]),
    connack("server_unavailable", 3, Mqtt311, Server, "Check broker health and its authentication backend; the client should retry with backoff.", &[]),
    connack("bad_username_or_password", 4, Mqtt311, Authentication, "Check how the client encodes its username and password, and that both are sent.", &["malformed_username_or_password", "bad_user_name_or_password"]),
    connack("not_authorized", 5, Mqtt311, Authorization, "Grant this client the right to connect, or correct the credentials it presents.", &["unauthorized_client", "unauthorized"]),
    // MQTT 5.0 CONNACK reason codes.
    connack("success", 0x00, Mqtt5, Success, "Nothing to do: the broker accepted the connection.", &[]),
    connack("unspecified_error", 0x80, Mqtt5, Server, "Read the broker log at this time for the client; the code itself says nothing more.", &[]),
    connack("malformed_packet", 0x81, Mqtt5, Protocol, "Fix the client library or firmware: its CONNECT packet does not decode.", &[]),
    connack("protocol_error", 0x82, Mqtt5, Protocol, "Fix the client's MQTT implementation: it broke the protocol (a second CONNECT, say).", &[]),
    connack("implementation_specific_error", 0x83, Mqtt5, Server, "Read the broker log: it rejected a valid CONNECT for a reason of its own.", &[]),
    connack("unsupported_protocol_version", 0x84, Mqtt5, Protocol, "Configure the client for an MQTT version the broker is set to accept.", &["unacceptable_protocol_version"]),
    connack("client_identifier_not_valid", 0x85, Mqtt5, ClientId, "Send a client id the broker allows: valid characters, within its length limit.", &["identifier_rejected"]),
    connack("bad_username_or_password", 0x86, Mqtt5, Authentication, "Check the credentials on the device against the broker's authentication source.", &["bad_user_name_or_password"]),
    connack("not_authorized", 0x87, Mqtt5, Authorization, "Grant this client the right to connect in the broker's ACL, or fix who it claims to be.", &["unauthorized", "unauthorized_client", "authorization_failed"]),
    connack("server_unavailable", 0x88, Mqtt5, Server, "Check broker health and its authentication backend; the client should retry with backoff.", &[]),
    connack("server_busy", 0x89, Mqtt5, Capacity, "Add broker capacity or spread reconnects out with jittered backoff.", &[]),
    connack("banned", 0x8A, Mqtt5, Authorization, "Find why this client is on the broker's ban list before lifting the ban.", &[]),
    connack("bad_authentication_method", 0x8C, Mqtt5, Authentication, "Use an authentication method the broker has enabled, and keep it the same on re-authentication.", &[]),
    connack("topic_name_invalid", 0x90, Mqtt5, Protocol, "Fix the will topic the client sends: the broker rejects it.", &[]),
    connack("packet_too_large", 0x95, Mqtt5, Protocol, "Shrink the CONNECT packet (usually the will payload) or raise the broker's size limit.", &[]),
    connack("quota_exceeded", 0x97, Mqtt5, Capacity, "Raise the quota for this tenant or user, or close connections it no longer needs.", &[]),
    connack("payload_format_invalid", 0x99, Mqtt5, Protocol, "Make the will payload match the payload format indicator the client sets.", &[]),
    connack("retain_not_supported", 0x9A, Mqtt5, Protocol, "Clear the retain flag on the will message, or enable retained messages on the broker.", &[]),
    connack("qos_not_supported", 0x9B, Mqtt5, Protocol, "Lower the will QoS to the maximum the broker supports.", &[]),
    connack("use_another_server", 0x9C, Mqtt5, Redirect, "Let the client follow the server reference it was given; check it does.", &[]),
    connack("server_moved", 0x9D, Mqtt5, Redirect, "Point the client at the broker's new address for good.", &[]),
    connack("connection_rate_exceeded", 0x9F, Mqtt5, Capacity, "Slow the client's reconnects with backoff and jitter, or raise the broker's rate limit.", &[]),
    // Disconnect reasons as EMQX and TDMQ name them.
    disconnect("normal", Some(0x00), Broker, Normal, "Nothing to do unless the client was not meant to leave at this time.", &["normal_disconnection", "client_initiated_disconnect"]),
    disconnect("kicked", Some(0x98), Broker, Admin, "Check the broker's API and console logs for who removed the client and why.", &["administrative_action", "kick", "api_initiated_disconnect"]),
    disconnect("keepalive_timeout", Some(0x8D), Broker, Network, "Check the device's network and load; raise keepalive on weak links.", &["keep_alive_timeout", "mqtt_keep_alive_timeout"]),
    disconnect("not_authorized", Some(0x87), Broker, Authorization, "Grant the topics the client needs in the ACL, or stop it publishing where it may not.", &["unauthorized", "client_authorization_error"]),
    disconnect("not_authenticated", None, Broker, Authentication, "Check the username, password, certificate or token configured on the device.", &["auth_error", "client_authentication_error"]),
    disconnect("tcp_closed", None, Broker, Network, "Look for device crashes, NAT or firewall timeouts, and carrier drops on this path.", &["sock_closed", "socket_closed", "tcp_close", "connection_lost"]),
    disconnect("internal_error", None, Broker, Protocol, "Inspect the packets the client sends and the broker log; usually a malformed packet.", &[]),
    disconnect("discarded", None, Broker, SessionConflict, "Two connections share this client id with clean start: give every device its own id.", &[]),
    disconnect("takenover", Some(0x8E), Broker, SessionConflict, "Another connection took this client id: give every device its own id; a single takeover after a network blip is harmless.", &["takeovered", "taken_over", "takeover", "session_taken_over", "duplicate_clientid"]),
    disconnect("ping_without_connect", None, Broker, Protocol, "Fix the client's MQTT implementation: it must send CONNECT before anything else.", &[]),
    disconnect("authentication_expired", None, Broker, Authentication, "Have the client refresh its token before it expires.", &["customauth_ttl_expiration"]),
    disconnect("too_many_connection", None, Broker, Capacity, "Raise the connection limit, or find the client bug that opens connections it never closes.", &["too_many_connections"]),
    disconnect("go_away", Some(0x8B), Broker, Server, "The broker node restarted or shut down; make sure clients reconnect on their own.", &["server_shutting_down", "server_initiated_disconnect"]),
    disconnect("client_id_too_long", None, Broker, ClientId, "Shorten the client ids the devices generate to the broker's limit.", &[]),
    disconnect("client_id_required", None, Broker, ClientId, "Send a client id whenever clean session is off, or turn clean session on.", &[]),
    disconnect("client_id_invalid", None, Broker, ClientId, "Generate client ids from the characters the broker allows.", &[]),
    disconnect("bad_will_message", None, Broker, Protocol, "Fix the will message's topic and payload, and check the client may publish there.", &[]),
    disconnect("server_internal_error", None, Broker, Server, "Report the time, node and client id to whoever runs the broker.", &["server_error"]),
    disconnect("ip_forbidden", None, Broker, Authorization, "The client's address is blocked (an IP filter or private link rule): allow it, or find why it connects from there.", &["forbidden_access"]),
    disconnect("session_overflow", None, Broker, Capacity, "The client does not acknowledge its QoS 1 messages fast enough: make it keep up, or send it less.", &[]),
    // MQTT 5.0 DISCONNECT codes without a broker name above, as numeric reporters send them.
    disconnect("disconnect_with_will_message", Some(0x04), Mqtt5, Normal, "Nothing to do: the client left and asked for its will to be published.", &[]),
    disconnect("unspecified_error", Some(0x80), Mqtt5, Server, "Read the broker log at this time for the client; the code itself says nothing more.", &[]),
    disconnect("malformed_packet", Some(0x81), Mqtt5, Protocol, "Fix the client library or firmware: it sent a packet that does not decode.", &[]),
    disconnect("protocol_error", Some(0x82), Mqtt5, Protocol, "Fix the client's MQTT implementation: it broke the protocol.", &["client_error"]),
    disconnect("implementation_specific_error", Some(0x83), Mqtt5, Server, "Read the broker log: it dropped the client for a reason of its own.", &[]),
    disconnect("server_busy", Some(0x89), Mqtt5, Capacity, "Add broker capacity or spread reconnects out with jittered backoff.", &[]),
    disconnect("bad_authentication_method", Some(0x8C), Mqtt5, Authentication, "Use an authentication method the broker has enabled, and keep it the same on re-authentication.", &[]),
    disconnect("topic_filter_invalid", Some(0x8F), Mqtt5, Protocol, "Fix the topic filters the client subscribes with: the broker rejects their form.", &[]),
    disconnect("topic_name_invalid", Some(0x90), Mqtt5, Protocol, "Fix the topics the client publishes to: the broker rejects their form.", &[]),
    disconnect("receive_maximum_exceeded", Some(0x93), Mqtt5, Protocol, "Fix the client: it had more QoS 1/2 messages in flight than the broker allows.", &[]),
    disconnect("topic_alias_invalid", Some(0x94), Mqtt5, Protocol, "Fix the client's topic alias handling.", &[]),
    disconnect("packet_too_large", Some(0x95), Mqtt5, Protocol, "Shrink the messages the client sends or raise the broker's size limit.", &[]),
    disconnect("message_rate_too_high", Some(0x96), Mqtt5, Capacity, "Slow the client's publishing or raise its rate limit.", &["throttled"]),
    disconnect("quota_exceeded", Some(0x97), Mqtt5, Capacity, "Raise the quota for this tenant or user, or reduce what the client does.", &[]),
    disconnect("payload_format_invalid", Some(0x99), Mqtt5, Protocol, "Make the payloads match the payload format indicator the client sets.", &[]),
    disconnect("retain_not_supported", Some(0x9A), Mqtt5, Protocol, "Stop the client setting retain, or enable retained messages on the broker.", &[]),
    disconnect("qos_not_supported", Some(0x9B), Mqtt5, Protocol, "Publish at or below the maximum QoS the broker announced in its CONNACK.", &[]),
    disconnect("use_another_server", Some(0x9C), Mqtt5, Redirect, "Let the client follow the server reference it was given; check it does.", &[]),
    disconnect("server_moved", Some(0x9D), Mqtt5, Redirect, "Point the client at the broker's new address for good.", &[]),
    disconnect("connection_rate_exceeded", Some(0x9F), Mqtt5, Capacity, "Slow the client's reconnects with backoff and jitter, or raise the broker's rate limit.", &[]),
    disconnect("shared_subscriptions_not_supported", Some(0x9E), Mqtt5, Protocol, "Subscribe without `$share/`, or enable shared subscriptions on the broker.", &["shared_subscription_not_supported"]),
    disconnect("maximum_connect_time", Some(0xA0), Mqtt5, Admin, "The broker limits connection time; reconnecting is expected.", &["websocket_ttl_expiration"]),
    disconnect("subscription_identifiers_not_supported", Some(0xA1), Mqtt5, Protocol, "Subscribe without subscription identifiers, or enable them on the broker.", &[]),
    disconnect("wildcard_subscriptions_not_supported", Some(0xA2), Mqtt5, Protocol, "Subscribe to exact topics, or enable wildcard subscriptions on the broker.", &["wildcard_subscription_not_supported"]),
];
