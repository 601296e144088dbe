//! The PostgreSQL listener: TLS set up before the first connection (or no start at all), a cap
//! on connections answered the way PostgreSQL answers it, and a drain on shutdown that lets
//! running statements finish while idle connections are closed.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::pgwire::api::PgWireServerHandlers;
use datafusion_postgres::pgwire::tokio::{process_socket, TlsAcceptor};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

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
    pub max_connections: usize,
    pub running: Running,
    pub drain: Duration,
}

impl<H: PgWireServerHandlers + Send + Sync + 'static> Listener<H> {
    /// Serves connections until `stop`, then drains.
    pub async fn run(self, stop: CancellationToken) -> std::io::Result<()> {
        let permits = Arc::new(Semaphore::new(self.max_connections));
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
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                ::metrics::counter!(m::CONNECTIONS_TOTAL, "outcome" => "refused").increment(1);
                warn!(%peer, max = self.max_connections, "Refused a connection: --pg-max-connections reached.");
                connections.spawn(too_many(socket, self.max_connections));
                continue;
            };
            ::metrics::counter!(m::CONNECTIONS_TOTAL, "outcome" => "accepted").increment(1);
            let (tls, handlers) = (self.tls.clone(), self.handlers.clone());
            connections.spawn(async move {
                let _permit = permit;
                let _open = Open::new();
                if let Err(e) = process_socket(socket, tls, handlers).await {
                    debug!(%peer, error = %e, "A PostgreSQL connection ended with an error.");
                }
            });
        }
        drop(self.listener);
        let open = self.max_connections - permits.available_permits();
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

/// Answers like PostgreSQL past `max_connections`: declines TLS if asked, reads the startup
/// message, then sends FATAL 53300 and closes.
async fn too_many(mut socket: TcpStream, max: usize) {
    let exchange = async {
        let mut packet = read_packet(&mut socket).await?;
        // SSLRequest and GSSENCRequest: 8 bytes, a magic code; the startup message follows.
        if packet.len() == 4 && matches!(&packet[..], [0x04, 0xd2, 0x16, 0x2f] | [0x04, 0xd2, 0x16, 0x30]) {
            socket.write_all(b"N").await?;
            packet = read_packet(&mut socket).await?;
        }
        drop(packet);
        let message = format!("sorry, too many clients already (connaudit serve --pg-max-connections {max})");
        socket.write_all(&error_response("FATAL", "53300", &message)).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), exchange).await;
}

/// One length-prefixed packet of the startup phase, without its length.
async fn read_packet(socket: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = socket.read_u32().await? as usize;
    if !(4..=10_000).contains(&len) {
        return Err(ErrorKind::InvalidData.into());
    }
    let mut body = vec![0; len - 4];
    socket.read_exact(&mut body).await?;
    Ok(body)
}

fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}
