//! The HTTP server: `POST /events` (EMQX's HTTP action), `/healthz`, `/readyz`, `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, value::RawValue};
use tokio::sync::{mpsc, oneshot};

use crate::health::Health;
use crate::metrics as m;
use crate::pipeline::{Ack, Incoming, Outcome, Source};

#[derive(Clone)]
pub struct AppState {
    pub health: Health,
    pub metrics: PrometheusHandle,
    pub events: mpsc::Sender<Incoming>,
    pub timeout: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|State(s): State<AppState>| async move { s.metrics.render() }))
        .route("/events", post(events))
        .with_state(state)
}

async fn readyz(State(s): State<AppState>) -> Response {
    let body = Json(json!({ "mqtt": s.health.mqtt(), "kafka": s.health.kafka() }));
    let status = if s.health.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body).into_response()
}

/// Splits a body into events: a JSON array gives one event per element, with each element's
/// bytes kept exactly as sent; anything else is one event (possibly a malformed one).
pub fn split_events(body: &Bytes) -> Vec<Bytes> {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(body) {
            return items.iter().map(|raw| Bytes::copy_from_slice(raw.get().as_bytes())).collect();
        }
    }
    vec![body.clone()]
}

/// Answers 200 only after every event of the body is in Kafka (or its dead-letter topic).
async fn events(State(s): State<AppState>, body: Bytes) -> Response {
    let tx = &s.events;
    let unavailable = |why: &str| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": why }))).into_response();
    // The deadline covers waiting for room in the queue too, not only Kafka's confirmation.
    let submit_and_wait = async {
        let mut replies = Vec::new();
        for payload in split_events(&body) {
            let (reply, wait) = oneshot::channel();
            m::totals::received("http");
            let incoming = Incoming {
                payload,
                topic: None,
                source: Source::Http,
                received_at_ms: crate::now_ms(),
                ack: Ack::Http(reply),
            };
            metrics::gauge!(m::QUEUED).increment(1.0);
            if tx.send(incoming).await.is_err() {
                metrics::gauge!(m::QUEUED).decrement(1.0);
                return None;
            }
            replies.push(wait);
        }
        futures::future::try_join_all(replies).await.ok()
    };
    let outcomes = match tokio::time::timeout(s.timeout, submit_and_wait).await {
        Ok(Some(outcomes)) => outcomes,
        Ok(None) => return unavailable("shutting down before Kafka confirmed; send again"),
        Err(_) => return unavailable("Kafka did not confirm in time; send again"),
    };
    let dead = outcomes.iter().filter(|o| **o == Outcome::DeadLettered).count();
    Json(json!({ "accepted": outcomes.len() - dead, "dead_lettered": dead })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_split_into_exact_element_bytes() {
        let body = Bytes::from_static(b" [ {\"clientid\": \"a\"} ,{\"clientid\":\"b\",\"x\":[1, 2]}]");
        let parts = split_events(&body);
        assert_eq!(
            parts,
            vec![
                Bytes::from_static(b"{\"clientid\": \"a\"}"),
                Bytes::from_static(b"{\"clientid\":\"b\",\"x\":[1, 2]}")
            ]
        );
        for single in [&b"{\"clientid\":\"a\"}"[..], b"not json", b"[broken"] {
            assert_eq!(split_events(&Bytes::copy_from_slice(single)), vec![Bytes::copy_from_slice(single)]);
        }
        assert!(split_events(&Bytes::from_static(b"[]")).is_empty());
    }
}
