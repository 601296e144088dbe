//! One client connection from its first byte to its close. pgwire's own loop keeps reading
//! after a failed login (its error path marks the connection ready for queries), so serve runs
//! its own around pgwire's message handlers: TLS negotiated here, a deadline on everything
//! before the login, nothing but the login's messages until it succeeded, the connection
//! closed after any error before it or any FATAL after it, each message's size capped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use datafusion_postgres::pgwire::api::{
    ClientInfo, DefaultClient, ErrorHandler, PgWireConnectionState, PgWireServerHandlers,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::server::{process_error, process_message, MaybeTls, PgWireMessageServerCodec};
use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{Framed, FramedParts};
use tracing::debug;

use crate::capped::{Capped, STARTUP_BYTES};
use crate::metrics as m;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// What a connection may hold, from the flags.
#[derive(Debug, Clone)]
pub struct Limits {
    pub login_timeout: Duration,
    pub max_message_bytes: usize,
    pub max_connections: usize,
}

/// The places a connection holds: one among those still logging in (given back at the login)
/// and, once logged in, one among the users'.
pub struct Admission {
    pub users: Arc<Semaphore>,
    pub pending: Vec<OwnedSemaphorePermit>,
}

/// Serves one connection until the client leaves, breaks the protocol or fails its login.
pub async fn serve<H: PgWireServerHandlers>(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    handlers: Arc<H>,
    mut admission: Admission,
    limits: Limits,
) -> io::Result<()> {
    let login_deadline = Instant::now() + limits.login_timeout;
    let negotiated = match tokio::time::timeout_at(login_deadline, negotiate(tcp, tls)).await {
        Ok(Ok(Some(negotiated))) => negotiated,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => {
            refused("protocol_violation");
            return Err(e);
        }
        Err(_) => {
            refused("login_timeout");
            return Ok(());
        }
    };
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();

    let mut parts = FramedParts::new(
        Capped::new(negotiated.stream, negotiated.read.is_empty()),
        PgWireMessageServerCodec::new(DefaultClient::new(peer, negotiated.secure)),
    );
    parts.read_buf = negotiated.read;
    let mut socket = Framed::from_parts(parts);
    socket.set_state(PgWireConnectionState::AwaitingStartup);
    let mut user: Option<OwnedSemaphorePermit> = None;

    loop {
        let next = if user.is_some() {
            socket.next().await
        } else {
            match tokio::time::timeout_at(login_deadline, socket.next()).await {
                Ok(next) => next,
                Err(_) => {
                    refused("login_timeout");
                    let message = "canceling authentication due to timeout (--pg-login-timeout)";
                    return fatal(&mut socket, "08006", message).await;
                }
            }
        };
        let message = match next {
            None => return Ok(()),
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                let (code, outcome) =
                    if is_too_large(&e) { ("54000", "too_large") } else { ("08P01", "protocol_violation") };
                if user.is_none() {
                    refused(outcome);
                } else {
                    ::metrics::counter!(m::PROTOCOL_ERRORS, "kind" => outcome).increment(1);
                }
                debug!(%peer, error = %e, "Closing a connection that broke the protocol.");
                return fatal(&mut socket, code, &e.to_string()).await;
            }
        };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        if user.is_none() {
            match &message {
                PgWireFrontendMessage::Startup(_) if admission.users.available_permits() == 0 => {
                    refused("refused");
                    return fatal(&mut socket, "53300", &too_many(limits.max_connections)).await;
                }
                PgWireFrontendMessage::Startup(_)
                | PgWireFrontendMessage::PasswordMessageFamily(_)
                | PgWireFrontendMessage::CancelRequest(_) => {}
                _ => {
                    refused("protocol_violation");
                    let message = "only the login's messages are read before a login succeeded";
                    return fatal(&mut socket, "08P01", message).await;
                }
            }
        }
        // A cancel request comes on a connection of its own, which then closes.
        let cancel_request = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let extended_message = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let handled = process_message(
            message,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await;
        if cancel_request {
            return Ok(());
        }
        if let Err(mut e) = handled {
            errors.on_error(&socket, &mut e);
            if user.is_none() {
                refused("login_failed");
                let info = ErrorInfo::from(e);
                return fatal(&mut socket, &info.code, &info.message).await;
            }
            let info = ErrorInfo::from(e);
            let closes = info.is_fatal();
            process_error(&mut socket, PgWireError::UserError(Box::new(info)), extended_message).await?;
            if closes {
                return Ok(());
            }
            continue;
        }
        if user.is_none() && matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
            let Ok(permit) = admission.users.clone().try_acquire_owned() else {
                refused("refused");
                return fatal(&mut socket, "53300", &too_many(limits.max_connections)).await;
            };
            user = Some(permit);
            admission.pending.clear();
            socket.get_mut().set_limit(limits.max_message_bytes);
            ::metrics::counter!(m::CONNECTIONS_TOTAL, "outcome" => "accepted").increment(1);
        }
    }
}

fn too_many(max: usize) -> String {
    format!("sorry, too many clients already (connaudit serve --pg-max-connections {max})")
}

/// Counts a connection that did not get in, by why.
pub fn refused(outcome: &'static str) {
    ::metrics::counter!(m::CONNECTIONS_TOTAL, "outcome" => outcome).increment(1);
}

fn is_too_large(e: &PgWireError) -> bool {
    match e {
        PgWireError::MessageTooLarge(..) => true,
        PgWireError::IoError(io) => io.get_ref().is_some_and(|inner| inner.is::<crate::capped::TooLarge>()),
        _ => false,
    }
}

/// Sends a FATAL error and closes the connection.
async fn fatal<T, S>(socket: &mut Framed<T, PgWireMessageServerCodec<S>>, code: &str, message: &str) -> io::Result<()>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let info = crate::error::fatal(code, message);
    let _ = socket.send(PgWireBackendMessage::ErrorResponse(info.into())).await;
    let _ = socket.close().await;
    Ok(())
}

struct Negotiated {
    stream: MaybeTls,
    /// What was read past the negotiation: the startup packet of a plain-text client.
    read: BytesMut,
    secure: bool,
}

/// SSLRequest and GSSENCRequest answered (TLS when configured, never GSS), or TLS straight
/// away (PostgreSQL 17's direct negotiation). A plain-text client's startup packet is read
/// here, with PostgreSQL's 10,000-byte limit.
async fn negotiate(mut tcp: TcpStream, tls: Option<TlsAcceptor>) -> io::Result<Option<Negotiated>> {
    let secure = |stream| Negotiated { stream, read: BytesMut::new(), secure: true };
    for _ in 0..3 {
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        if first[0] == 0x16 {
            let Some(acceptor) = &tls else { return Ok(None) };
            return Ok(Some(secure(MaybeTls::Tls(Box::new(acceptor.accept(tcp).await?)))));
        }
        let mut head = [0u8; 8];
        tcp.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (len, code, &tls) {
            (8, SSL_REQUEST, Some(acceptor)) => {
                tcp.write_all(b"S").await?;
                return Ok(Some(secure(MaybeTls::Tls(Box::new(acceptor.accept(tcp).await?)))));
            }
            (8, SSL_REQUEST | GSSENC_REQUEST, _) => tcp.write_all(b"N").await?,
            _ if !(8..=STARTUP_BYTES).contains(&len) => {
                let e = crate::capped::TooLarge { declared: len, limit: STARTUP_BYTES };
                let message = format!("not a startup message: {e}");
                let _ = tcp.write_all(&error_response("FATAL", "08P01", &message)).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            _ => {
                let mut read = BytesMut::zeroed(len);
                read[..8].copy_from_slice(&head);
                tcp.read_exact(&mut read[8..]).await?;
                return Ok(Some(Negotiated { stream: MaybeTls::Plain(tcp), read, secure: false }));
            }
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "more than two negotiation requests"))
}

/// An ErrorResponse as bytes, for answers written before pgwire's codec takes the socket.
pub fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
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
