//! A fuzzer over what a client controls, against the serve process: before a login (SSL and
//! GSS requests, startup packets, SASL messages, any frontend message, lengths that lie) and
//! after an anonymous one (every frontend message with random bodies). No input may run a
//! statement before a login, take the process down, or grow its memory past a bound.
//!
//! Bounded in time: `CONNAUDIT_FUZZ_SECS` (15 by default) for each half; longer by hand, e.g.
//! `CONNAUDIT_FUZZ_SECS=600 cargo nextest run --workspace -E 'test(fuzz)' --no-capture`.

use std::time::{Duration, Instant};

use anyhow::Result;
use connaudit_tests::fixture::warehouse;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{psql, Serve};
use crate::wire;

const TAGS: &[u8] = b"QPBEDSHCFpXdcfQ\x00\xff";

fn budget() -> Duration {
    let secs = std::env::var("CONNAUDIT_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    Duration::from_secs(secs)
}

fn bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max);
    (0..n).map(|_| if rng.random_bool(0.7) { rng.random_range(b' '..=b'z') } else { rng.random() }).collect()
}

/// A frontend message with a random tag and body, its length sometimes a lie.
fn message(rng: &mut StdRng) -> Vec<u8> {
    let tag = TAGS[rng.random_range(0..TAGS.len())];
    let body = match rng.random_range(0..4) {
        0 => wire::query(&String::from_utf8_lossy(&bytes(rng, 80)))[5..].to_vec(),
        1 => wire::extended("SELECT 1")[5..].to_vec(),
        _ => bytes(rng, 200),
    };
    let mut out = wire::typed(tag, &body);
    match rng.random_range(0..6) {
        0 => out[1..5].copy_from_slice(&rng.random::<u32>().to_be_bytes()),
        1 => out[1..5].copy_from_slice(&(rng.random_range(0..8u32)).to_be_bytes()),
        2 => out.truncate(rng.random_range(1..=out.len())),
        _ => {}
    }
    out
}

/// Something a client might send first.
fn opening(rng: &mut StdRng) -> Vec<u8> {
    let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let gss = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    match rng.random_range(0..7) {
        0 => bytes(rng, 64),
        1 => [ssl.to_vec(), wire::login()].concat(),
        2 => [gss.to_vec(), ssl.to_vec(), ssl.to_vec(), wire::login()].concat(),
        3 => {
            let key = String::from_utf8_lossy(&bytes(rng, 12)).to_string();
            let value = String::from_utf8_lossy(&bytes(rng, 40)).to_string();
            wire::startup(&[("user", "connaudit"), (key.as_str(), value.as_str())])
        }
        4 => {
            let mut s = wire::login();
            let at = rng.random_range(0..s.len());
            s[at] = rng.random();
            s
        }
        _ => wire::login(),
    }
}

/// Sends `input`, closes the sending half, and reads until the server closes (bounded).
async fn exchange(port: u16, input: &[u8]) -> Result<()> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await?;
    let _ = socket.write_all(input).await;
    let _ = socket.shutdown().await;
    let mut buf = vec![0; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_before_a_login_runs_nothing_and_the_server_stays_up() -> Result<()> {
    let wh = warehouse()?;
    let mut serve = Serve::start(&wh, &["--memory-limit", "256M"]).await?;
    let seed: u64 = std::env::var("CONNAUDIT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(26);
    let mut rng = StdRng::seed_from_u64(seed);
    let (started, budget) = (Instant::now(), budget());
    let mut inputs = 0u64;
    while started.elapsed() < budget {
        let mut input = opening(&mut rng);
        if rng.random_bool(0.5) {
            let mechanism = ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "BOGUS", ""][rng.random_range(0..4)];
            input.extend(wire::sasl_initial(mechanism, &bytes(&mut rng, 100)));
        }
        for _ in 0..rng.random_range(0..4) {
            input.extend(message(&mut rng));
        }
        input.extend(wire::query("SELECT 43"));
        exchange(serve.port, &input).await?;
        inputs += 1;
    }
    eprintln!("fuzz (seed {seed}): {inputs} inputs before a login in {:?}; peak RSS {} MiB", budget, serve.peak_mib());
    assert!(serve.process.running()?, "serve died; see {}", serve.dir.path().display());
    assert_eq!(serve.metric("connaudit_serve_queries_total").await?, 0.0, "a statement ran before a login");
    let (code, _, err) = psql(&serve.dsn(), "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    assert!(serve.peak_mib() < 512, "peak RSS {} MiB", serve.peak_mib());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_after_a_login_never_takes_the_server_down() -> Result<()> {
    let wh = warehouse()?;
    let mut serve = Serve::start_with(&wh, &["--pg-allow-anonymous", "--memory-limit", "256M"], &[]).await?;
    let seed: u64 = std::env::var("CONNAUDIT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(27);
    let mut rng = StdRng::seed_from_u64(seed);
    let (started, budget) = (Instant::now(), budget());
    let mut inputs = 0u64;
    while started.elapsed() < budget {
        let mut input = wire::login();
        for _ in 0..rng.random_range(1..6) {
            input.extend(message(&mut rng));
        }
        exchange(serve.port, &input).await?;
        inputs += 1;
    }
    eprintln!("fuzz (seed {seed}): {inputs} inputs after a login in {:?}; peak RSS {} MiB", budget, serve.peak_mib());
    assert!(serve.process.running()?, "serve died; see {}", serve.dir.path().display());
    let dsn = format!("host=127.0.0.1 port={} dbname=connaudit user=anyone", serve.port);
    let (code, _, err) = psql(&dsn, "SELECT 1")?;
    assert_eq!(code, 0, "{err}");
    assert!(serve.peak_mib() < 512, "peak RSS {} MiB", serve.peak_mib());
    Ok(())
}
