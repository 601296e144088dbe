//! The HTTP face every service shares: `/healthz` (the process answers), `/readyz` (the
//! service's own readiness, as JSON) and `/metrics` (Prometheus), served until a stop token
//! fires. A service adds its own routes by merging them into [`router`]'s.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Supervisor;

/// What a service says on `/readyz`: ready or not, and the parts it is made of.
pub trait Readiness: Clone + Send + Sync + 'static {
    fn readiness(&self) -> (bool, serde_json::Value);
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn router<R: Readiness>(readiness: R, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || async move { readyz(&readiness) }))
        .route("/metrics", get(move || async move { metrics.render() }))
}

fn readyz<R: Readiness>(readiness: &R) -> Response {
    let (ready, parts) = readiness.readiness();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(parts)).into_response()
}

/// The running HTTP server of a service.
pub struct Http {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Http {
    /// Serves `router` on `listener` under `supervisor` until [`Http::stop`].
    pub fn spawn(supervisor: &Supervisor, listener: TcpListener, router: Router) -> std::io::Result<Http> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = supervisor.spawn(
            "http server",
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future(),
        );
        Ok(Http { addr, stop, task })
    }

    /// Stops accepting, lets running requests finish for up to 5 s, then drops the rest.
    /// Services call it last, so probes and scrapes answer during their drain.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// A token cancelled by SIGTERM or Ctrl-C: every service drains on it.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM.");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("Received SIGTERM."),
            _ = tokio::signal::ctrl_c() => tracing::info!("Received Ctrl-C."),
        }
        cancel.cancel();
    });
    token
}
