//! The HTTP server: `POST /events` (EMQX's HTTP action, an AWS IoT rule's HTTPS action, an Azure
//! Event Grid webhook with its validation handshakes), `/healthz`, `/readyz`, `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use connaudit_model::Broker;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, value::RawValue};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::config::IngestConfig;
use crate::health::Health;
use crate::metrics as m;
use crate::pipeline::{Ack, Incoming, Outcome, Source};

#[derive(Clone)]
pub struct AppState {
    pub health: Health,
    pub metrics: PrometheusHandle,
    pub events: mpsc::Sender<Incoming>,
    pub timeout: Duration,
    pub limits: Limits,
}

/// Who may post and how much: checked before a body is read.
#[derive(Clone)]
pub struct Limits {
    pub token: Option<Arc<str>>,
    pub max_body_bytes: usize,
    pub max_events: usize,
    pub requests: Arc<Semaphore>,
    pub body_timeout: Duration,
    /// Bodies held at once, in KiB.
    pub body_memory: Arc<Semaphore>,
}

impl Limits {
    pub fn new(cfg: &IngestConfig) -> Self {
        Limits {
            token: cfg.http_token.as_deref().map(Arc::from),
            max_body_bytes: cfg.http_max_body_bytes,
            max_events: cfg.http_max_events,
            requests: Arc::new(Semaphore::new(cfg.http_max_concurrent)),
            body_timeout: Duration::from_secs(cfg.http_body_timeout_secs),
            body_memory: Arc::new(Semaphore::new(cfg.http_max_body_memory.div_ceil(1024))),
        }
    }
}

/// Marks a request that came without the token but as an Event Grid validation handshake:
/// the handshake is answered, nothing else is.
#[derive(Clone, Copy)]
struct HandshakeOnly;

pub fn router(state: AppState) -> Router {
    // Event Grid's handshakes produce nothing, and may come without the sender's token.
    let events = post(events)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .options(abuse_protection);
    let shell = connaudit_service::router(state.health.clone(), state.metrics.clone());
    shell.merge(Router::new().route("/events", events).with_state(state))
}

/// The bearer token, a place among the concurrent requests and room for the body, all before
/// the body is read; then the body, within its deadline.
async fn guard(State(s): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(token) = &s.limits.token {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let ok =
            given.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()));
        // Event Grid's validation handshake comes before the subscription has the token.
        let handshake = request.headers().get("aeg-event-type").is_some_and(|v| v == "SubscriptionValidation");
        match (ok, handshake) {
            (true, _) => {}
            (false, true) => {
                request.extensions_mut().insert(HandshakeOnly);
            }
            (false, false) => {
                return refuse(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer ...)")
            }
        }
    }
    let Ok(_permit) = s.limits.requests.clone().try_acquire_owned() else {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "too many requests at once; send again later");
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > s.limits.max_body_bytes) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than --http-max-body-bytes");
    }
    // Hyper holds a body to its Content-Length; one without it may grow to the limit.
    let reserve = declared.unwrap_or(s.limits.max_body_bytes).div_ceil(1024).max(1) as u32;
    let Ok(_room) = s.limits.body_memory.clone().try_acquire_many_owned(reserve) else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many request bodies in memory at once; send again later");
    };
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, s.limits.max_body_bytes);
    let bytes = match tokio::time::timeout(s.limits.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than --http-max-body-bytes"),
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "the body took longer than --http-body-timeout-secs"),
    };
    let response = next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        metrics::counter!(m::HTTP_REFUSED, "status" => "413").increment(1);
    }
    response
}

fn refuse(status: StatusCode, why: &str) -> Response {
    metrics::counter!(m::HTTP_REFUSED, "status" => status.as_u16().to_string()).increment(1);
    let mut response = (status, Json(json!({ "error": why }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    response
}

/// Compares in time independent of where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

/// CloudEvents' webhook validation (what Azure Event Grid sends before delivering CloudEvents
/// to an endpoint): an OPTIONS request naming its origin, answered by allowing it.
async fn abuse_protection(headers: HeaderMap) -> Response {
    let origin = headers.get("webhook-request-origin").cloned();
    let mut response = StatusCode::OK.into_response();
    if let Some(origin) = origin {
        response.headers_mut().insert("webhook-allowed-origin", origin);
    }
    response
}

/// Azure Event Grid's subscription validation (its own schema): the validation code back,
/// nothing produced.
fn subscription_validation(headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    let kind = headers.get("aeg-event-type").and_then(|v| v.to_str().ok())?;
    if !kind.eq_ignore_ascii_case("SubscriptionValidation") {
        return None;
    }
    let events: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
    let code = events.iter().find_map(|e| e["data"]["validationCode"].as_str())?;
    Some(Json(json!({ "validationResponse": code })).into_response())
}

/// Answers 200 only after every event of the body is in Kafka (or its dead-letter topic).
async fn events(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    handshake_only: Option<Extension<HandshakeOnly>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(validated) = subscription_validation(&headers, &body) {
        return validated;
    }
    if handshake_only.is_some() {
        return refuse(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer ...)");
    }
    // `?source_format=tdmq`: which broker posts here, where its payloads cannot tell.
    let asked = query.iter().flat_map(|q| q.split('&')).find_map(|kv| kv.strip_prefix("source_format="));
    let format = match asked.map(str::parse::<Broker>).transpose() {
        Ok(format) => format,
        Err(why) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response(),
    };
    let tx = &s.events;
    let unavailable = |why: &str| (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": why }))).into_response();
    // The deadline covers waiting for room in the queue too, not only Kafka's confirmation.
    let events = split_events(&body);
    if events.len() > s.limits.max_events {
        let why =
            format!("{} events in one request; at most {} (--http-max-events)", events.len(), s.limits.max_events);
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({ "error": why }))).into_response();
    }
    // VerneMQ's webhooks name their hook in a header, not in the body: it plays the topic's part.
    let hook = headers.get("vernemq-hook").and_then(|v| v.to_str().ok()).map(str::to_string);
    let submit_and_wait = async {
        let mut replies = Vec::new();
        for payload in events {
            let (reply, wait) = oneshot::channel();
            m::totals::received("http");
            let incoming = Incoming {
                format,
                payload,
                topic: hook.clone(),
                source: Source::Http,
                received_at_ms: crate::now_ms(),
                ack: Ack::Http(reply),
                qos0: false,
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
    let count = |want: Outcome| outcomes.iter().filter(|o| **o == want).count();
    let (dead, dropped) = (count(Outcome::DeadLettered), count(Outcome::Dropped));
    let mut answer = json!({ "accepted": outcomes.len() - dead - dropped, "dead_lettered": dead });
    if dropped > 0 {
        answer["dropped"] = json!(dropped);
    }
    Json(answer).into_response()
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
