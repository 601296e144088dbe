//! The demo's brokers, in this process on loopback ports: rumqttd for MQTT (a 3.1.1 listener
//! for the simulator, a 5.0 listener for ingest) and librdkafka's mock cluster for Kafka.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::error::{Error, Result};

/// The MQTT listeners: (3.1.1, 5.0).
pub fn mqtt() -> Result<(SocketAddr, SocketAddr)> {
    let (v4, v5) = (free_addr()?, free_addr()?);
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 500,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = |name: &str, listen| ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 1000,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server("v4", v4))])),
        v5: Some(HashMap::from([("1".to_string(), server("v5", v5))])),
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = Broker::new(config).start() {
                tracing::error!(error = %e, "The embedded MQTT broker stopped.");
            }
        })
        .map_err(|e| Error::Embedded(format!("cannot start rumqttd: {e}")))?;
    for addr in [v4, v5] {
        wait_listening(addr)?;
    }
    Ok((v4, v5))
}

/// A one-broker mock cluster with the events topic (8 partitions), its DLQ and alerts topics.
/// The mock keeps about 5 MB per partition and drops older records silently; 8 partitions
/// give the transformer room to fall behind at high `--rate`s.
pub fn kafka(topic: &str) -> Result<MockCluster<'static, DefaultProducerContext>> {
    let mock = MockCluster::new(1)?;
    mock.create_topic(topic, 8, 1)?;
    mock.create_topic(&format!("{topic}.dlq"), 1, 1)?;
    mock.create_topic(&format!("{topic}.alerts"), 1, 1)?;
    Ok(mock)
}

pub fn free_addr() -> Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Embedded(format!("no free loopback port: {e}")))
}

fn wait_listening(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Embedded(format!("rumqttd did not listen on {addr} within 10 s")))
}

/// Waits until `url` answers 200 (a service's `/readyz`), at most `timeout`.
pub(crate) async fn wait_ready(url: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Embedded(format!("{url} was not ready within {timeout:?}")))
}
