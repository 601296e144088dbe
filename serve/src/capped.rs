//! A client's byte stream, read with a cap on each message's declared length: the codec of
//! pgwire buffers a whole message before it decodes it (up to 1 GiB for a query), so a client
//! that announces a huge message is cut off while it sends it, not after serve holds it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest message PostgreSQL reads before a login (its startup packet limit).
pub const STARTUP_BYTES: usize = 10_000;

/// Wraps `S`, following the frontend's framing as bytes pass: an untyped packet first (the
/// startup message, when it is still to come), then typed messages (a tag and a length).
pub struct Capped<S> {
    inner: S,
    limit: usize,
    untyped: bool,
    header: [u8; 5],
    have: usize,
    body: usize,
}

impl<S> Capped<S> {
    /// `startup_next`: the startup message is the next thing the client sends.
    pub fn new(inner: S, startup_next: bool) -> Self {
        Capped { inner, limit: STARTUP_BYTES, untyped: startup_next, header: [0; 5], have: 0, body: 0 }
    }

    /// The cap from now on (raised once the client logged in).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    fn scan(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.body > 0 {
                let n = self.body.min(data.len());
                self.body -= n;
                data = &data[n..];
                continue;
            }
            let header_len = if self.untyped { 4 } else { 5 };
            let n = (header_len - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have < header_len {
                break;
            }
            let at = header_len - 4;
            let declared =
                u32::from_be_bytes([self.header[at], self.header[at + 1], self.header[at + 2], self.header[at + 3]])
                    as usize;
            if declared < 4 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a message shorter than its length field"));
            }
            if declared > self.limit {
                return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge { declared, limit: self.limit }));
            }
            self.body = declared - 4;
            self.have = 0;
            self.untyped = false;
        }
        Ok(())
    }
}

/// A message longer than the cap; the text is what the client is told.
#[derive(Debug, thiserror::Error)]
#[error("a message of {declared} bytes is over the limit of {limit} (--pg-max-message-bytes; {STARTUP_BYTES} before a login)")]
pub struct TooLarge {
    pub declared: usize,
    pub limit: usize,
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.scan(&buf.filled()[before..])?;
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, len: u32) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(b'x', len as usize - 4));
        out
    }

    #[test]
    fn messages_under_the_cap_pass_in_any_split_and_a_larger_one_is_refused_from_its_header() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&9u32.to_be_bytes());
        stream.extend_from_slice(&[0, 3, 0, 0, 0]);
        stream.extend(typed(b'Q', 100));
        stream.extend(typed(b'p', 10_000));
        for chunk in [1, 3, 7, 4096] {
            let mut capped = Capped::new((), true);
            for piece in stream.chunks(chunk) {
                capped.scan(piece).expect("within the cap");
            }
        }
        let mut capped = Capped::new((), false);
        let header = &typed(b'Q', 20_000)[..5];
        let err = capped.scan(header).expect_err("over the cap");
        assert!(err.to_string().contains("20000 bytes"), "{err}");
        let mut raised = Capped::new((), false);
        raised.set_limit(1 << 20);
        raised.scan(&typed(b'Q', 20_000)).expect("within the raised cap");
        assert!(Capped::new((), false).scan(&[b'Q', 0, 0, 0, 2]).is_err(), "a length under 4");
    }
}
