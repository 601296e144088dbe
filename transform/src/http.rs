//! `/healthz`, `/readyz` (Kafka reachable and the warehouse writable) and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<[AtomicBool; 2]>);

impl Health {
    pub fn set_kafka(&self, up: bool) {
        self.0[0].store(up, Ordering::Relaxed);
    }

    pub fn set_warehouse(&self, up: bool) {
        self.0[1].store(up, Ordering::Relaxed);
    }

    pub fn kafka(&self) -> bool {
        self.0[0].load(Ordering::Relaxed)
    }

    pub fn warehouse(&self) -> bool {
        self.0[1].load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: PrometheusHandle,
}

pub fn router(health: Health, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(s): State<AppState>| async move { s.metrics.render() }))
        .with_state(AppState { health, metrics })
}

async fn readyz(State(s): State<AppState>) -> Response {
    let (kafka, warehouse) = (s.health.kafka(), s.health.warehouse());
    let status = if kafka && warehouse { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "kafka": kafka, "warehouse": warehouse }))).into_response()
}
