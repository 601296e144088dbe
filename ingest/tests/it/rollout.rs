//! A rolling replacement of two replicas under load loses nothing: each replica keeps its
//! client id across the replacement (a StatefulSet's pod name), so the broker's session, with
//! the events queued or unacknowledged while the pod was away, is resumed by its successor.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;

use crate::harness::*;

const EVENTS: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_replacement_of_two_replicas_loses_nothing() -> Result<()> {
    let rig = Rig::start(2).await?;
    let statefulset = unique("connaudit-ingest");
    let replica = |ordinal: usize| {
        let mut cfg = rig.config(&["$share/connaudit/client_connack"]);
        cfg.mqtt.client_id = Some(format!("{statefulset}-{ordinal}"));
        cfg
    };
    let mut pods = vec![Some(Ingest::start(replica(0)).await?), Some(Ingest::start(replica(1)).await?)];

    let (client, _loop) = publisher(rig.mqtt.port).await?;
    let events: Vec<_> = (0..EVENTS).map(|i| event(0, i)).collect();
    let load = tokio::spawn(async move { publish_all(&client, &events, Some(Duration::from_millis(1))).await });

    for (ordinal, pod) in pods.iter_mut().enumerate() {
        tokio::time::sleep(Duration::from_millis(800)).await;
        // SIGTERM, the pod is gone for a moment, then its successor starts with the same name.
        pod.take().expect("running").stop().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        *pod = Some(Ingest::start(replica(ordinal)).await?);
    }
    load.await??;
    until_produced(pods[0].as_ref().expect("running").http, EVENTS).await?;

    let reads = rig.read(&rig.topic, EVENTS, 60).await?;
    let got: BTreeSet<u64> = seqs(&reads).into_iter().collect();
    let missing: Vec<u64> = (0..EVENTS as u64).filter(|s| !got.contains(s)).collect();
    assert!(missing.is_empty(), "{} of {EVENTS} lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    eprintln!("rolling replacement: {EVENTS} events, 0 lost, {} duplicates", reads.len() - got.len());
    for pod in pods.into_iter().flatten() {
        pod.stop().await?;
    }
    Ok(())
}
