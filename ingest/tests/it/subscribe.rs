//! Ingest subscribes on every connection, resumed session or not, and a subscription the
//! broker refuses fails readiness and names the topic.

use std::process::Command;

use anyhow::{ensure, Context, Result};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_gets_the_changed_topics() -> Result<()> {
    let rig = Rig::start(1).await?;
    let mut cfg = rig.config(&["client_connack"]);
    cfg.mqtt.client_id = Some(unique("stable"));
    Ingest::start(cfg.clone()).await?.stop().await?;

    // Same client id, so the broker resumes the session, which lacks the new topic.
    cfg.mqtt.topics = vec!["site-a/client_connected".into()];
    let ingest = Ingest::start(cfg).await?;
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    let (_, payload) = event(1, 3);
    publish_all(&client, &[("site-a/client_connected".into(), payload)], None).await?;
    assert_eq!(seqs(&rig.read(&rig.topic, 1, 20).await?), vec![3]);
    ingest.stop().await
}

/// Runs `mosquitto_ctrl dynsec ARGS` against the broker as its admin.
fn dynsec(port: u16, args: &str) -> Result<()> {
    let out = Command::new("mosquitto_ctrl")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-u", "admin", "-P", "admin-pass", "dynsec"])
        .args(args.split_whitespace())
        .output()?;
    ensure!(out.status.success(), "mosquitto_ctrl dynsec {args}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_fails_readiness_and_names_the_topic() -> Result<()> {
    // Mosquitto's dynamic security plugin refuses subscriptions no role allows (SUBACK 0x87).
    let mqtt = Server::mosquitto_with(|dir| {
        let config = dir.join("dynsec.json");
        let out = Command::new("mosquitto_ctrl")
            .arg("dynsec")
            .arg("init")
            .arg(&config)
            .args(["admin", "admin-pass"])
            .output()?;
        ensure!(out.status.success(), "dynsec init: {}", String::from_utf8_lossy(&out.stderr));
        // Debian's mosquitto package puts it under the multiarch library directory.
        let plugin = std::fs::read_dir("/usr/lib")?
            .filter_map(|d| d.ok().map(|d| d.path().join("mosquitto_dynamic_security.so")))
            .find(|p| p.exists())
            .context("mosquitto_dynamic_security.so (Debian's mosquitto package) is not installed")?;
        Ok(format!("plugin {}\nplugin_opt_config_file {}\n", plugin.display(), config.display()))
    })?;
    let port = mqtt.port;
    for step in [
        "createClient ingest -p ingest-pass",
        "createRole reader",
        "addRoleACL reader subscribePattern client_connack allow 5",
        "addClientRole ingest reader",
    ] {
        dynsec(port, step)?;
    }
    let rig = Rig::with_mqtt(mqtt, 1).await?;
    let mut cfg = rig.config(&["client_connack", "secret/events"]);
    cfg.mqtt.username = Some("ingest".into());
    cfg.mqtt.password = Some("ingest-pass".into());
    let http = cfg.http_listen;
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(connaudit_ingest::run(cfg, stop.clone()));

    let body = readyz_until(http, "the refused subscription", |status, body| {
        assert_ne!(status, 200, "ready with a refused subscription: {body}");
        body.contains("refused")
    })
    .await?;
    assert!(body.contains("secret/events (NotAuthorized)"), "{body}");
    assert!(!body.contains("client_connack ("), "the granted topic is not blamed: {body}");
    stop.cancel();
    task.await??;
    Ok(())
}
