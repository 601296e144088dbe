//! The PostgreSQL listener: TLS set up before the first connection (or no start at all), caps on
//! the connections still logging in (in all and per client address, refused at once without a
//! task) apart from the cap on logged-in users, and a drain on shutdown that lets running
//! statements finish while idle connections are closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::api::PgWireServerHandlers;
use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::conn::{self, Limits};
use crate::error::{Error, Result};
use crate::metrics as m;
use crate::rows::Running;

/// The TLS acceptor of `cert` and `key`; any problem is an error, never plain text instead.
pub fn tls(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let bad = |what: &'static str, path: &Path, message: String| Error::Tls {
        what,
        path: path.display().to_string(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| bad("--pg-tls-cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("--pg-tls-cert", cert, "no certificate in it (expected PEM)".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--pg-tls-key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| bad("--pg-tls-cert/--pg-tls-key", cert, e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub struct Listener<H> {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub handlers: Arc<H>,
    pub limits: Limits,
    /// Connections not logged in yet, in all and from one address.
    pub max_pending: usize,
    pub max_pending_per_address: usize,
    pub running: Running,
    pub drain: Duration,
}

impl<H: PgWireServerHandlers + Send + Sync + 'static> Listener<H> {
    /// Serves connections until `stop`, then drains.
    pub async fn run(self, stop: CancellationToken) -> std::io::Result<()> {
        let users = Arc::new(Semaphore::new(self.limits.max_connections));
        let pending = Arc::new(Semaphore::new(self.max_pending));
        let mut per_address: HashMap<IpAddr, Arc<Semaphore>> = HashMap::new();
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            while connections.try_join_next().is_some() {}
            let (socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "Cannot accept a PostgreSQL connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            per_address.retain(|_, slots| slots.available_permits() < self.max_pending_per_address);
            let address = per_address
                .entry(peer.ip())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_pending_per_address)))
                .clone();
            let admitted = address.try_acquire_owned().ok().zip(pending.clone().try_acquire_owned().ok());
            let Some((from_address, in_all)) = admitted else {
                conn::refused("pending_full");
                warn!(%peer, "Refused a connection: too many connections are logging in (--pg-max-pending-logins).");
                refuse_now(
                    &socket,
                    "too many connections are logging in; try again (connaudit serve --pg-max-pending-logins)",
                );
                continue;
            };
            let (tls, handlers, limits) = (self.tls.clone(), self.handlers.clone(), self.limits.clone());
            let admission = conn::Admission { users: users.clone(), pending: vec![from_address, in_all] };
            connections.spawn(async move {
                let _open = Open::new();
                if let Err(e) = conn::serve(socket, peer, tls, handlers, admission, limits).await {
                    debug!(%peer, error = %e, "A PostgreSQL connection ended with an error.");
                }
            });
        }
        drop(self.listener);
        let open = self.limits.max_connections - users.available_permits();
        info!(connections = open, running = self.running.count(), "Draining: waiting for running statements.");
        // Until no statement has run for 250 ms: a client that just got its rows may still
        // send the COMMIT of its transaction.
        let deadline = tokio::time::Instant::now() + self.drain;
        let mut quiet = 0;
        while quiet < 5 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            quiet = if self.running.count() == 0 { quiet + 1 } else { 0 };
        }
        if self.running.count() > 0 {
            warn!(running = self.running.count(), "Statements still running at the deadline are cut off.");
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// Keeps `connaudit_serve_connections` while a connection is open.
struct Open;

impl Open {
    fn new() -> Self {
        ::metrics::gauge!(m::CONNECTIONS).increment(1.0);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ::metrics::gauge!(m::CONNECTIONS).decrement(1.0);
    }
}

/// A FATAL 53300 written without waiting (what does not fit in the socket's buffer is not
/// sent), then the socket closed: a refused connection costs no task and no time. libpq reads
/// it as the answer to its startup packet (or to its SSL request).
fn refuse_now(socket: &TcpStream, message: &str) {
    let _ = socket.try_write(&conn::error_response("FATAL", "53300", message));
}
