//! `mqtts://` with a CA, a client certificate and a password against a Mosquitto TLS listener
//! that requires the certificate and checks the password.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};

use crate::harness::*;

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate with openssl.
fn make_certs(dir: &Path) -> Result<()> {
    let openssl = |args: &str| -> Result<()> {
        let out = Command::new("openssl").args(args.split_whitespace()).current_dir(dir).output()?;
        ensure!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    // Extensions make both version 3 certificates, the only kind rustls accepts.
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
    openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=connaudit-test-ca")?;
    for name in ["server", "client"] {
        openssl(&format!("req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name}"))?;
        openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext"
        ))?;
    }
    let out = Command::new("mosquitto_passwd")
        .args(["-b", "-c", "passwd", "ingest", "tls-pass"])
        .current_dir(dir)
        .output()?;
    ensure!(out.status.success(), "mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtts_with_client_certificate() -> Result<()> {
    let tls_port = free_port();
    let mqtt = Server::mosquitto_with(|dir| {
        make_certs(dir)?;
        let d = dir.display();
        Ok(format!(
            "password_file {d}/passwd\nlistener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n"
        ))
    })?;
    let rig = Rig::with_mqtt(mqtt, 1).await?;
    let mut cfg = rig.config(&["client_connack"]);
    cfg.mqtt.url = format!("mqtts://127.0.0.1:{tls_port}");
    cfg.mqtt.ca_file = Some(rig.mqtt.dir().join("ca.pem"));
    cfg.mqtt.client_cert = Some(rig.mqtt.dir().join("client.pem"));
    cfg.mqtt.client_key = Some(rig.mqtt.dir().join("client.key"));
    cfg.mqtt.username = Some("ingest".into());

    // A wrong password is refused by the broker: never ready.
    let mut wrong = cfg.clone();
    wrong.mqtt.password = Some("not-it".into());
    let stop = tokio_util::sync::CancellationToken::new();
    let http = wrong.http_listen;
    let run = tokio::spawn(connaudit_ingest::run(wrong, stop.clone()));
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        wait_ready(&http.to_string(), std::time::Duration::from_secs(5)),
    )
    .await;
    assert!(!matches!(body, Ok(Ok(()))), "ready with a wrong password");
    stop.cancel();
    run.await??;

    cfg.mqtt.password = Some("tls-pass".into());
    let ingest = Ingest::start(cfg).await?;

    // Published on the plain listener; read by ingest over TLS.
    let (client, _loop) = publisher(rig.mqtt.port).await?;
    publish_all(&client, &[event(0, 42)], None).await?;
    let reads = rig.read(&rig.topic, 1, 30).await?;
    assert_eq!(seqs(&reads), vec![42]);
    ingest.stop().await
}
