//! The PostgreSQL frontend protocol by hand, for what no client library will send: messages
//! before a login, a login that fails halfway, lies about lengths.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A startup message (protocol 3.0) with these parameters.
pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// The startup message of user `connaudit` to database `connaudit`.
pub fn login() -> Vec<u8> {
    startup(&[("user", "connaudit"), ("database", "connaudit")])
}

/// A typed message: its tag, its length, its body.
pub fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut out = s.as_bytes().to_vec();
    out.push(0);
    out
}

/// A simple-protocol query.
pub fn query(sql: &str) -> Vec<u8> {
    typed(b'Q', &cstr(sql))
}

/// SASLInitialResponse naming `mechanism`, with `data`.
pub fn sasl_initial(mechanism: &str, data: &[u8]) -> Vec<u8> {
    let mut body = cstr(mechanism);
    body.extend_from_slice(&(data.len() as i32).to_be_bytes());
    body.extend_from_slice(data);
    typed(b'p', &body)
}

/// Parse (unnamed statement, no parameter types), Bind (unnamed portal), Execute, Sync.
pub fn extended(sql: &str) -> Vec<u8> {
    let mut parse = cstr("");
    parse.extend(cstr(sql));
    parse.extend_from_slice(&0u16.to_be_bytes());
    let mut bind = cstr("");
    bind.extend(cstr(""));
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut execute = cstr("");
    execute.extend_from_slice(&0u32.to_be_bytes());
    [typed(b'P', &parse), typed(b'B', &bind), typed(b'E', &execute), typed(b'S', &[])].concat()
}

/// Connects from `from` (another loopback address, so the server sees another client).
pub async fn connect_from(from: &str, port: u16) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse()?)?;
    Ok(socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await?)
}

/// What the server sent until it closed the connection, or until `quiet` passed without a
/// byte: its messages as (tag, body), and whether it closed.
pub async fn read_all(socket: &mut TcpStream, quiet: Duration) -> (Vec<(u8, Vec<u8>)>, bool) {
    let mut bytes = Vec::new();
    let mut closed = false;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match tokio::time::timeout(quiet, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (messages(&bytes), closed)
}

/// Splits backend bytes into messages (a single-byte SSL answer comes as tag with no body).
pub fn messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if matches!(bytes[0], b'N' | b'S') && bytes.len() < 5 {
            out.push((bytes[0], Vec::new()));
            bytes = &bytes[1..];
            continue;
        }
        if bytes.len() < 5 {
            break;
        }
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let end = (1 + len).min(bytes.len());
        out.push((bytes[0], bytes[5.min(end)..end].to_vec()));
        bytes = &bytes[end..];
    }
    out
}

/// The severity, SQLSTATE and message of an ErrorResponse body.
pub fn error_fields(body: &[u8]) -> (String, String, String) {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).to_string();
        match field[0] {
            b'S' | b'V' => severity = value,
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    (severity, code, message)
}

/// Sends `bytes`, ignoring a connection the server already closed.
pub async fn send(socket: &mut TcpStream, bytes: &[u8]) {
    let _ = socket.write_all(bytes).await;
}

/// Reads messages until ReadyForQuery (or the connection closes, or `timeout`), counting the
/// rows without keeping them: (rows, errors as (severity, code, message), ready).
pub async fn drain_until_ready(
    socket: &mut TcpStream,
    timeout: Duration,
) -> (u64, Vec<(String, String, String)>, bool) {
    let (mut rows, mut errors, mut pending) = (0u64, Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return (rows, errors, false),
        };
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while pending.len() >= at + 5 {
            let len = u32::from_be_bytes([pending[at + 1], pending[at + 2], pending[at + 3], pending[at + 4]]) as usize;
            if pending.len() < at + 1 + len {
                break;
            }
            match pending[at] {
                b'D' => rows += 1,
                b'E' => errors.push(error_fields(&pending[at + 5..at + 1 + len])),
                b'Z' => return (rows, errors, true),
                _ => {}
            }
            at += 1 + len;
        }
        pending.drain(..at);
    }
}
