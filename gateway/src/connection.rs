//! What happens on a connection before actix-http parses a request: the TLS handshake
//! when the gateway serves HTTPS, then the first request head, both within
//! `head_timeout`, or the client is answered `408` in the one error shape (issue 11:
//! actix-http's own timeout answers a bare 408, with no body). The bytes read while
//! waiting are handed on in front of the stream, unchanged.

use bytes::{Buf, Bytes, BytesMut};
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
};

/// Read while waiting for the first head; a longer head is handed on as it is, and
/// actix-http's own limits answer it.
const HEAD_BYTES_MAX: usize = 16 * 1024;

/// A TCP stream with the bytes already read from it in front.
pub struct Prefixed {
    prefix: Bytes,
    io: Transport,
}

/// A connection as accepted: plain, or after its TLS handshake.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// HTTPS: the certificate chain and private key, PEM files (`QRGATE_TLS_CERT_FILE`,
/// `QRGATE_TLS_KEY_FILE`), for HTTP/1.1 over TLS 1.2 and 1.3.
pub fn tls_acceptor(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context;
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "QRGATE_TLS_CERT_FILE={}: no PEM certificates",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "QRGATE_TLS_CERT_FILE={}: holds no certificate",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "QRGATE_TLS_KEY_FILE={}: no PEM private key",
            key_file.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("QRGATE_TLS_CERT_FILE and QRGATE_TLS_KEY_FILE do not make a pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

/// Accepts a new connection: its TLS handshake when `tls` is given, then its first
/// request head, all within `head_timeout`.
pub async fn accept(
    io: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    head_timeout: Duration,
) -> Result<(Prefixed, Option<SocketAddr>), actix_http::error::DispatchError> {
    let peer = io.peer_addr().ok();
    let deadline = tokio::time::Instant::now() + head_timeout;
    let transport = match tls {
        None => Transport::Plain(io),
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
            Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(?peer, error = %e, "TLS handshake failed");
                return Err(actix_http::error::DispatchError::Io(e));
            }
            Err(_) => {
                crate::metrics::SLOW_REQUEST_HEADS
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(?peer, "TLS handshake not finished in time");
                return Err(actix_http::error::DispatchError::SlowRequestTimeout);
            }
        },
    };
    first_head(transport, peer, deadline, head_timeout).await
}

/// Waits for the first request head on a new connection. `Ok`: the stream, with what was
/// read, and the peer's address, for actix-http. `Err`: the client was too slow and has
/// been answered `408`; the connection is done.
async fn first_head(
    mut io: Transport,
    peer: Option<SocketAddr>,
    deadline: tokio::time::Instant,
    head_timeout: Duration,
) -> Result<(Prefixed, Option<SocketAddr>), actix_http::error::DispatchError> {
    let mut read = BytesMut::with_capacity(1024);
    let head = async {
        while !head_complete(&read) && read.len() < HEAD_BYTES_MAX {
            if io.read_buf(&mut read).await? == 0 {
                break; // closed: actix-http sees the end of the stream
            }
        }
        Ok::<_, io::Error>(())
    };
    match tokio::time::timeout_at(deadline, head).await {
        Ok(Ok(())) => Ok((
            Prefixed {
                prefix: read.freeze(),
                io,
            },
            peer,
        )),
        Ok(Err(e)) => Err(actix_http::error::DispatchError::Io(e)),
        Err(_) => {
            crate::metrics::SLOW_REQUEST_HEADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(?peer, "request head not received in time: 408");
            let _ = io.write_all(&timeout_answer(head_timeout)).await;
            let _ = io.shutdown().await;
            Err(actix_http::error::DispatchError::SlowRequestTimeout)
        }
    }
}

fn head_complete(read: &[u8]) -> bool {
    read.windows(4).any(|w| w == b"\r\n\r\n") || read.windows(2).any(|w| w == b"\n\n")
}

/// `408` in the one error shape, closing the connection.
fn timeout_answer(head_timeout: Duration) -> Vec<u8> {
    let error = crate::error::ApiError::new(
        crate::error::ErrorCode::RequestTimeout,
        format!(
            "the request head was not received within {} ms",
            head_timeout.as_millis()
        ),
    );
    let mut body = error.body();
    body["error"]["request_id"] = qrgate_domain::ids::mint("req").into();
    let body = body.to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_flush(cx),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Transport::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_head_is_complete_at_its_blank_line() {
        assert!(super::head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(super::head_complete(b"GET / HTTP/1.1\nHost: x\n\n"));
        assert!(!super::head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }
}
