//! The EC2 instance metadata service as object_store asks it (IMDSv2: a session token by PUT,
//! then the role's name and its credentials), on a loopback port; it counts what it served.
//! The real one answers only inside EC2, at an address tests never reach.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::Result;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use tokio::task::JoinHandle;

pub const IMDS_ACCESS_KEY: &str = "IMDSTESTKEY";
const TOKEN: &str = "imds-session-token";
const ROLE: &str = "connaudit-node";

#[derive(Debug, Default)]
pub struct ImdsCounts {
    pub tokens: AtomicU64,
    pub credentials: AtomicU64,
    /// Requests without the session token, refused as IMDSv2 refuses them.
    pub refused: AtomicU64,
}

pub struct FakeImds {
    pub port: u16,
    pub counts: Arc<ImdsCounts>,
    task: JoinHandle<()>,
}

impl Drop for FakeImds {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeImds {
    pub async fn start() -> Result<FakeImds> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(ImdsCounts::default());
        let (c1, c2, c3) = (counts.clone(), counts.clone(), counts.clone());
        let app = axum::Router::new()
            .route(
                "/latest/api/token",
                put(move || async move {
                    c1.tokens.fetch_add(1, Relaxed);
                    TOKEN
                }),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/",
                get(move |h: HeaderMap| async move { authorised(&h, &c2).map(|()| ROLE.to_string()) }),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/{role}",
                get(move |h: HeaderMap| async move {
                    authorised(&h, &c3)?;
                    c3.credentials.fetch_add(1, Relaxed);
                    let expires = (chrono::Utc::now() + chrono::Duration::hours(1))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    Ok::<_, StatusCode>(format!(
                        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{IMDS_ACCESS_KEY}","SecretAccessKey":"imds-secret","Token":"imds-session","Expiration":"{expires}"}}"#
                    ))
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeImds { port, counts, task })
    }
}

fn authorised(headers: &HeaderMap, counts: &ImdsCounts) -> Result<(), StatusCode> {
    if headers.get("x-aws-ec2-metadata-token").is_some_and(|t| t == TOKEN) {
        Ok(())
    } else {
        counts.refused.fetch_add(1, Relaxed);
        Err(StatusCode::UNAUTHORIZED)
    }
}
