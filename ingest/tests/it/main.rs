//! Integration tests of ingest against a real Mosquitto, a real Kafka-protocol broker (tansu)
//! and librdkafka's mock cluster for outages.

mod dead_letter;
mod harness;
mod mqtt_to_kafka;
mod outage;
mod reconnect;
mod shutdown;
mod tls;
mod webhook;
