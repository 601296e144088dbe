//! An MQTT 3.1.1 publisher, standing in for a broker's republish rule.

use std::time::Duration;

use anyhow::Result;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::task::JoinHandle;

/// A connected publisher; its event loop runs until the handle is dropped or aborted.
pub async fn publisher(port: u16) -> Result<(AsyncClient, JoinHandle<()>)> {
    let mut options = MqttOptions::new(crate::unique("pub"), "127.0.0.1", port);
    // Up to ingest's default --mqtt-max-packet-size (rumqttc's own default is 10 KiB).
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let task = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    Ok((client, task))
}

/// Publishes each `(topic, payload)` with QoS 1; `pause` between messages paces the stream.
pub async fn publish_all<P: AsRef<[u8]>>(
    client: &AsyncClient,
    events: &[(String, P)],
    pause: Option<Duration>,
) -> Result<()> {
    for (topic, payload) in events {
        client.publish(topic, QoS::AtLeastOnce, false, payload.as_ref().to_vec()).await?;
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}
