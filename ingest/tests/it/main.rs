//! Integration tests of ingest against a real Mosquitto, a real Kafka-protocol broker (tansu)
//! and librdkafka's mock cluster for outages.

mod connections;
mod dead_letter;
mod harness;
mod hostile;
mod http_limits;
mod kafka_errors;
mod large;
mod mqtt_to_kafka;
mod outage;
mod qos0;
mod reconnect;
mod rollout;
mod shutdown;
mod subscribe;
mod tls;
mod webhook;
