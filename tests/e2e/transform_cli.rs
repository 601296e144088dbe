//! `connaudit transform` and `connaudit compact` as a user runs them: help and errors.

use std::process::Command;

use anyhow::Result;
use connaudit_tests::*;

#[test]
fn help_documents_every_option_with_its_variable() -> Result<()> {
    let out = Command::new(connaudit_bin()?).args(["transform", "--help"]).output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    let flags = [
        ("--config", "CONNAUDIT_CONFIG"),
        ("--kafka-brokers", "CONNAUDIT_KAFKA_BROKERS"),
        ("--kafka-topic", "CONNAUDIT_KAFKA_TOPIC"),
        ("--group", "CONNAUDIT_KAFKA_GROUP"),
        ("--kafka-dlq-topic", "CONNAUDIT_KAFKA_DLQ_TOPIC"),
        ("--kafka-alerts-topic", "CONNAUDIT_KAFKA_ALERTS_TOPIC"),
        ("--kafka-option", "CONNAUDIT_KAFKA_OPTIONS"),
        ("--warehouse", "CONNAUDIT_WAREHOUSE"),
        ("--regions", "CONNAUDIT_REGIONS"),
        ("--node-regions", "CONNAUDIT_NODE_REGIONS"),
        ("--batch-max-events", "CONNAUDIT_BATCH_MAX_EVENTS"),
        ("--batch-max-age-secs", "CONNAUDIT_BATCH_MAX_AGE_SECS"),
        ("--batch-idle-secs", "CONNAUDIT_BATCH_IDLE_SECS"),
        ("--alert-connack-failures", "CONNAUDIT_ALERT_CONNACK_FAILURES"),
        ("--alert-takeovers", "CONNAUDIT_ALERT_TAKEOVERS"),
        ("--http-listen", "CONNAUDIT_HTTP_LISTEN"),
        ("--shutdown-timeout-secs", "CONNAUDIT_SHUTDOWN_TIMEOUT_SECS"),
    ];
    for (flag, env) in flags {
        assert!(help.contains(flag), "help lacks {flag}");
        assert!(help.contains(env), "help lacks {env}");
    }
    assert!(help.contains("Example:") && help.contains("AWS_ENDPOINT_URL"), "help has an example");
    let out = Command::new(connaudit_bin()?).args(["compact", "--help"]).output()?;
    let help = String::from_utf8(out.stdout)?;
    for flag in
        ["--warehouse", "--older-than-hours", "--retain", "--memory-limit", "--small-file", "--dry-run", "Example:"]
    {
        assert!(help.contains(flag), "compact help lacks {flag}");
    }
    Ok(())
}

#[test]
fn bad_settings_exit_2_and_say_what_to_fix() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let regions = dir.path().join("regions.csv");
    std::fs::write(&regions, "10.0.0.0/33,eu\n")?;
    let regions = regions.display().to_string();
    let cases = [
        (vec!["--kafka-option", "nonsense"], "is not KEY=VALUE"),
        (vec!["--config", "/nonexistent/transform.toml"], "cannot read config file"),
        (vec!["--batch-max-events", "0"], "--batch-max-events"),
        (vec!["--warehouse", "gs://bucket/x"], "use a directory or s3://"),
        (vec!["--regions", "/nonexistent/regions.csv"], "cannot read the regions file"),
        (vec!["--regions", regions.as_str()], "line 1"),
    ];
    for (args, want) in cases {
        let out = Command::new(connaudit_bin()?)
            .arg("transform")
            .args(&args)
            .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
            .env_remove("CONNAUDIT_CONFIG")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    Ok(())
}
