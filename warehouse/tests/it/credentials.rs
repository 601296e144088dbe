//! The warehouse on S3 (moto's server on loopback) with each way a deployment gets its
//! credentials: keys in the environment, a web identity token exchanged at STS (IRSA on EKS),
//! and the instance metadata service. A recording proxy in front of the store shows which
//! access key signed every request; creating a table is a conditional PUT of its first commit.
//! Each test runs in its own process (nextest), so the variables reach only it.

use std::collections::BTreeSet;

use connaudit_tests::{FakeImds, FaultyS3, Server, IMDS_ACCESS_KEY};
use connaudit_warehouse::{Warehouse, EVENTS};

const WAREHOUSE: &str = "s3://audit/connaudit";

/// moto behind a proxy that fails nothing and records the signers; the bucket made.
async fn store() -> anyhow::Result<(Server, FaultyS3)> {
    let moto = Server::moto_s3()?;
    reqwest::Client::new().put(format!("http://127.0.0.1:{}/audit", moto.port)).send().await?.error_for_status()?;
    let proxy = FaultyS3::start(moto.port, u64::MAX).await?;
    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(key);
    }
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", proxy.port));
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    // Never the real metadata address: a closed loopback port unless a test serves one.
    std::env::set_var("AWS_METADATA_ENDPOINT", format!("http://127.0.0.1:{}", connaudit_tests::free_port()));
    Ok((moto, proxy))
}

/// Creates the events table (its first commit, a conditional PUT), opens it again as a second
/// writer would, and finds the warehouse as a reader does.
async fn create_and_reopen() -> anyhow::Result<()> {
    let wh = Warehouse::open(WAREHOUSE)?;
    let created = wh.writable(&EVENTS).await?;
    assert_eq!(created.version(), Some(0));
    assert_eq!(wh.writable(&EVENTS).await?.version(), Some(0), "the second opener finds the first's table");
    Warehouse::locate(WAREHOUSE).await?;
    Ok(())
}

fn signers(proxy: &FaultyS3) -> BTreeSet<String> {
    proxy.faults.signers.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_environment_sign_every_request() -> anyhow::Result<()> {
    let (_moto, proxy) = store().await?;
    std::env::set_var("AWS_ACCESS_KEY_ID", "ENVTESTKEY");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-secret");
    create_and_reopen().await?;
    assert_eq!(signers(&proxy), BTreeSet::from(["ENVTESTKEY".to_string()]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_identity_token_is_exchanged_at_sts_for_the_keys_that_sign() -> anyhow::Result<()> {
    let (_moto, proxy) = store().await?;
    // STS is reached over TLS only (object_store refuses plain HTTP for it): a moto of its own.
    let sts = Server::moto_sts()?;
    let token = sts.dir().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXVkaXQ6dHJhbnNmb3JtIn0.c2ln",
    )?;
    std::env::set_var("AWS_WEB_IDENTITY_TOKEN_FILE", &token);
    std::env::set_var("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/connaudit-transform");
    std::env::set_var("AWS_ENDPOINT_URL_STS", format!("https://127.0.0.1:{}", sts.port));
    std::env::set_var("SSL_CERT_FILE", sts.dir().join("ca.pem"));
    create_and_reopen().await?;
    let seen = signers(&proxy);
    assert!(!seen.is_empty() && seen.iter().all(|k| k.starts_with("ASIA")), "keys STS issued sign, not {seen:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_or_a_token_the_instance_metadata_gives_the_keys() -> anyhow::Result<()> {
    let (_moto, proxy) = store().await?;
    let imds = FakeImds::start().await?;
    std::env::set_var("AWS_METADATA_ENDPOINT", format!("http://127.0.0.1:{}", imds.port));
    create_and_reopen().await?;
    assert_eq!(signers(&proxy), BTreeSet::from([IMDS_ACCESS_KEY.to_string()]));
    let counts = &imds.counts;
    assert!(counts.tokens.load(std::sync::atomic::Ordering::Relaxed) >= 1, "IMDSv2: a session token first");
    assert!(counts.credentials.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(counts.refused.load(std::sync::atomic::Ordering::Relaxed), 0);
    Ok(())
}
