//! `connaudit ingest` as a user runs it: its help, its errors, and SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use connaudit_tests::*;

#[test]
fn help_documents_every_option_with_its_variable() -> Result<()> {
    let out = Command::new(connaudit_bin()?).args(["ingest", "--help"]).output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    let flags = [
        ("--config", "CONNAUDIT_CONFIG"),
        ("--mqtt-url", "CONNAUDIT_MQTT_URL"),
        ("--mqtt-topic", "CONNAUDIT_MQTT_TOPICS"),
        ("--mqtt-client-id", "CONNAUDIT_MQTT_CLIENT_ID"),
        ("--mqtt-username", "CONNAUDIT_MQTT_USERNAME"),
        ("--mqtt-password", "CONNAUDIT_MQTT_PASSWORD"),
        ("--mqtt-ca-file", "CONNAUDIT_MQTT_CA_FILE"),
        ("--mqtt-client-cert", "CONNAUDIT_MQTT_CLIENT_CERT"),
        ("--mqtt-client-key", "CONNAUDIT_MQTT_CLIENT_KEY"),
        ("--mqtt-keepalive-secs", "CONNAUDIT_MQTT_KEEPALIVE_SECS"),
        ("--mqtt-session-expiry-secs", "CONNAUDIT_MQTT_SESSION_EXPIRY_SECS"),
        ("--topic-event", "CONNAUDIT_TOPIC_EVENTS"),
        ("--kafka-brokers", "CONNAUDIT_KAFKA_BROKERS"),
        ("--kafka-topic", "CONNAUDIT_KAFKA_TOPIC"),
        ("--kafka-dlq-topic", "CONNAUDIT_KAFKA_DLQ_TOPIC"),
        ("--kafka-option", "CONNAUDIT_KAFKA_OPTIONS"),
        ("--http-listen", "CONNAUDIT_HTTP_LISTEN"),
        ("--max-in-flight", "CONNAUDIT_MAX_IN_FLIGHT"),
        ("--http-timeout-secs", "CONNAUDIT_HTTP_TIMEOUT_SECS"),
        ("--shutdown-timeout-secs", "CONNAUDIT_SHUTDOWN_TIMEOUT_SECS"),
        ("--mqtt-max-packet-size", "CONNAUDIT_MQTT_MAX_PACKET_SIZE"),
        ("--stall-timeout-secs", "CONNAUDIT_STALL_TIMEOUT_SECS"),
        ("--http-token", "CONNAUDIT_HTTP_TOKEN"),
        ("--http-max-body-bytes", "CONNAUDIT_HTTP_MAX_BODY_BYTES"),
        ("--http-max-events", "CONNAUDIT_HTTP_MAX_EVENTS"),
        ("--http-max-concurrent", "CONNAUDIT_HTTP_MAX_CONCURRENT"),
        ("--http-body-timeout-secs", "CONNAUDIT_HTTP_BODY_TIMEOUT_SECS"),
        ("--http-max-body-memory", "CONNAUDIT_HTTP_MAX_BODY_MEMORY"),
    ];
    for (flag, env) in flags {
        assert!(help.contains(flag), "help lacks {flag}");
        assert!(help.contains(env), "help lacks {env}");
    }
    assert!(help.contains("Example:"), "help has an example");
    Ok(())
}

#[test]
fn help_and_errors_never_print_secrets() -> Result<()> {
    let secrets = [
        ("CONNAUDIT_KAFKA_OPTIONS", "sasl.password=hunter-kafka"),
        ("CONNAUDIT_MQTT_URL", "mqtt://user:hunter-url@broker:1883"),
        ("CONNAUDIT_MQTT_PASSWORD", "hunter-mqtt"),
        ("CONNAUDIT_HTTP_TOKEN", "hunter-token"),
    ];
    for command in ["ingest", "transform"] {
        let out = Command::new(connaudit_bin()?).args([command, "--help"]).envs(secrets).output()?;
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --help");
        assert!(!help.contains("hunter"), "{command} --help shows a secret:\n{help}");
    }
    for url in ["mqtt://user:hunter-bad@broker:99999", "mqtt://user:hunter-bad@[broker:1883"] {
        let out = Command::new(connaudit_bin()?).args(["ingest", "--mqtt-url", url]).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--mqtt-url") && !stderr.contains("hunter"), "{stderr}");
    }
    Ok(())
}

#[test]
fn bad_settings_exit_2_and_say_what_to_fix() -> Result<()> {
    let cases = [
        (vec!["--mqtt-url", "http://broker"], "is not mqtt:// or mqtts://"),
        (vec!["--kafka-option", "nonsense"], "is not KEY=VALUE"),
        (vec!["--config", "/nonexistent/ingest.toml"], "cannot read config file"),
        (vec!["--mqtt-url", "mqtts://broker:8883"], "--mqtt-ca-file"),
    ];
    for (args, want) in cases {
        let out = Command::new(connaudit_bin()?).arg("ingest").args(&args).env_remove("CONNAUDIT_CONFIG").output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero() -> Result<()> {
    let mqtt = Server::mosquitto()?;
    let kafka = Server::tansu()?;
    let topic = unique("events");
    create_topics(&kafka.bootstrap(), &[&topic, &format!("{topic}.dlq")], 2).await?;
    let http = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(connaudit_bin()?)
        .arg("ingest")
        .env("CONNAUDIT_MQTT_URL", format!("mqtt://127.0.0.1:{}", mqtt.port))
        .env("CONNAUDIT_MQTT_CLIENT_ID", unique("e2e-ingest"))
        .env("CONNAUDIT_KAFKA_BROKERS", kafka.bootstrap())
        .env("CONNAUDIT_KAFKA_TOPIC", &topic)
        .env("CONNAUDIT_KAFKA_DLQ_TOPIC", format!("{topic}.dlq"))
        .env("CONNAUDIT_HTTP_LISTEN", &http)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_ready(&http, Duration::from_secs(30)).await?;

    let events: Vec<_> = (0..300).map(|i| event(i, i)).collect();
    let (client, _loop) = publisher(mqtt.port).await?;
    publish_all(&client, &events, None).await?;
    let reads = read_topic(&kafka.bootstrap(), &topic, events.len(), Duration::from_secs(60)).await?;
    assert_eq!(seqs(&reads), (0..300).collect::<Vec<u64>>());

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("ingest did not exit within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "graceful exit");
    Ok(())
}
