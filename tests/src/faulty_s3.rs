//! A fault-injecting proxy in front of an S3-compatible server (moto): a share of the writes
//! (PUT, POST, DELETE) fail. Half of those never reach the store (503 SlowDown, as S3 answers
//! when throttling); the other half are carried out and then answered with 500, like a write
//! whose response was lost to a timeout: the client retries a write that already happened
//! (for a Delta commit, a conditional PUT that now finds its file).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use tokio::task::JoinHandle;

/// What the proxy did so far.
#[derive(Debug, Default)]
pub struct Faults {
    pub writes: AtomicU64,
    pub refused: AtomicU64,
    pub lost_answers: AtomicU64,
    /// The access key ids the requests were signed with (`Credential=KEY/...`).
    pub signers: Mutex<BTreeSet<String>>,
}

struct Shared {
    target: String,
    /// A write fails when its number modulo `every` is 0 or `every / 2`.
    every: u64,
    client: reqwest::Client,
    faults: Arc<Faults>,
}

/// The proxy, listening on a free loopback port until dropped.
pub struct FaultyS3 {
    pub port: u16,
    pub faults: Arc<Faults>,
    task: JoinHandle<()>,
}

impl Drop for FaultyS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyS3 {
    /// In front of `127.0.0.1:target`; one write in `every / 2` fails (every = 20: 10%;
    /// `u64::MAX`: none, a proxy that only records).
    pub async fn start(target: u16, every: u64) -> Result<FaultyS3> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let shared = Arc::new(Shared {
            target: format!("http://127.0.0.1:{target}"),
            every: every.max(2),
            client: reqwest::Client::new(),
            faults: faults.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FaultyS3 { port, faults, task })
    }
}

async fn forward(State(s): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let signer = parts.headers.get("authorization").and_then(|a| a.to_str().ok()).and_then(|a| {
        let key = a.split("Credential=").nth(1)?;
        Some(key.split('/').next()?.to_string())
    });
    s.faults.signers.lock().unwrap().insert(signer.unwrap_or_else(|| "(unsigned)".into()));
    let write = matches!(parts.method, Method::PUT | Method::POST | Method::DELETE);
    let n = if write { s.faults.writes.fetch_add(1, Relaxed) + 1 } else { 1 };
    if write && n % s.every == 0 {
        s.faults.refused.fetch_add(1, Relaxed);
        return answer(StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), Bytes::from_static(SLOW_DOWN));
    }
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return answer(StatusCode::BAD_REQUEST, HeaderMap::new(), Bytes::new());
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = s.client.request(parts.method.clone(), format!("{}{path}", s.target)).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            forwarded = forwarded.header(name, value);
        }
    }
    let Ok(response) = forwarded.send().await else {
        return answer(StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new());
    };
    if write && n % s.every == s.every / 2 {
        s.faults.lost_answers.fetch_add(1, Relaxed);
        return answer(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), Bytes::from_static(INTERNAL));
    }
    let status = response.status();
    let mut headers = response.headers().clone();
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    headers.remove("connection");
    let bytes = response.bytes().await.unwrap_or_default();
    answer(status, headers, bytes)
}

fn answer(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

const SLOW_DOWN: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
const INTERNAL: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
