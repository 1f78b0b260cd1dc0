//! TLS to PostgreSQL (rustls), as `DATABASE_URL`'s `sslmode` asks, with libpq's names:
//!
//! - none given, or `disable`: no TLS (a database on this machine or a private network);
//! - `prefer` / `require`: encrypted (`prefer` falls back to plain text when the server
//!   has no TLS), the server's certificate not checked — a passive listener learns
//!   nothing, an active one in the middle could;
//! - `verify-full` with `sslrootcert=<CA file, PEM>`: encrypted, and the server's
//!   certificate must chain to that CA and name the host connected to. What a
//!   deployment across a network uses.
//!
//! tokio-postgres knows only the first three; `verify-full` and `sslrootcert` are taken
//! out of the URL here, and its remaining options are tokio-postgres's.

use anyhow::{bail, Context};
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::{
    config::SslMode,
    tls::{ChannelBinding, MakeTlsConnect, TlsConnect},
};

/// How to reach the database: tokio-postgres's settings and the TLS they use.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: PgTls,
    /// Whether the server's certificate is checked (`verify-full`).
    pub verified: bool,
}

/// Parses a `DATABASE_URL` (URL or `key=value` form) into a [`Target`].
pub fn target(database_url: &str) -> anyhow::Result<Target> {
    let (rest, mode, root_cert) = take_tls_options(database_url);
    let mut config: tokio_postgres::Config = rest
        .parse()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let (ssl_mode, client) = match (mode.as_deref(), root_cert) {
        (None | Some("disable"), None) => (SslMode::Disable, None),
        (Some("prefer"), None) => (SslMode::Prefer, Some(unverified())),
        (Some("require"), None) => (SslMode::Require, Some(unverified())),
        (Some("verify-full"), Some(path)) => (SslMode::Require, Some(verified(&path)?)),
        (Some("verify-full"), None) => {
            bail!("DATABASE_URL: sslmode=verify-full needs sslrootcert=<the CA's certificate file>")
        }
        (Some("verify-ca"), _) => {
            bail!("DATABASE_URL: sslmode=verify-ca is not supported; use verify-full (the CA and the host name)")
        }
        (_, Some(_)) => bail!("DATABASE_URL: sslrootcert is used only with sslmode=verify-full"),
        (Some(other), None) => bail!(
            "DATABASE_URL: sslmode={other} is not one of disable, prefer, require, verify-full"
        ),
    };
    config.ssl_mode(ssl_mode);
    Ok(Target {
        config,
        verified: mode.as_deref() == Some("verify-full"),
        tls: PgTls(client.map(Arc::new)),
    })
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn take_tls_options(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root_cert) = (None, None);
    let kept = if let Some((base, query)) = url.split_once('?') {
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", v)) => mode = Some(percent_decoded(v)),
                Some(("sslrootcert", v)) => root_cert = Some(percent_decoded(v)),
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        // key=value form: whitespace-separated, values without quotes or spaces here.
        let mut kept = Vec::new();
        for pair in url.split_whitespace() {
            match pair.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.to_owned()),
                Some(("sslrootcert", v)) => root_cert = Some(v.to_owned()),
                _ => kept.push(pair),
            }
        }
        kept.join(" ")
    };
    (kept, mode, root_cert)
}

fn percent_decoded(v: &str) -> String {
    url::form_urlencoded::parse(format!("v={v}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verified(ca_path: &str) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(ca_path)
        .with_context(|| format!("DATABASE_URL sslrootcert={ca_path}: cannot read it"))?;
    for certificate in certificates {
        let certificate =
            certificate.with_context(|| format!("sslrootcert={ca_path}: not a PEM certificate"))?;
        roots
            .add(certificate)
            .with_context(|| format!("sslrootcert={ca_path}: not a usable CA certificate"))?;
    }
    if roots.is_empty() {
        bail!("DATABASE_URL sslrootcert={ca_path}: holds no certificate");
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn unverified() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
        .with_no_client_auth()
}

/// `sslmode=require`: any certificate, the handshake's signatures still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres's TLS connector: rustls with the client configuration `target` made
/// (none: the URL asked for no TLS, and tokio-postgres never calls it).
#[derive(Clone)]
pub struct PgTls(Option<Arc<ClientConfig>>);

/// The TLS handshake with the database failed: a certificate that does not check out,
/// or a server that does not speak TLS. Not "the database is not there yet".
#[derive(Debug, thiserror::Error)]
#[error("TLS to the database: {0}")]
pub struct HandshakeFailed(io::Error);

/// One connection's handshake (`None`: the URL asked for no TLS; tokio-postgres makes
/// one anyway and never uses it).
pub struct Connect(Option<(Arc<ClientConfig>, ServerName<'static>)>);

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = Connect;
    type Error = anyhow::Error;

    fn make_tls_connect(&mut self, host: &str) -> anyhow::Result<Connect> {
        let Some(client) = self.0.clone() else {
            return Ok(Connect(None));
        };
        let host = ServerName::try_from(host.to_owned())
            .with_context(|| format!("{host} is not a host name for TLS"))?;
        Ok(Connect(Some((client, host))))
    }
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = HandshakeFailed;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream<S>, HandshakeFailed>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let (client, host) = self.0.ok_or_else(|| {
                HandshakeFailed(io::Error::other("TLS was not asked for (sslmode)"))
            })?;
            tokio_rustls::TlsConnector::from(client)
                .connect(host, stream)
                .await
                .map(PgTlsStream)
                .map_err(HandshakeFailed)
        })
    }
}

pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PgTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_the_url_and_the_rest_kept() {
        let (rest, mode, root) = take_tls_options(
            "postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, _) = take_tls_options("host=h user=u sslmode=require");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=h user=u", Some("require"))
        );
    }

    #[test]
    fn modes_that_cannot_be_kept_are_refused_at_start() {
        for (url, says) in [
            ("postgres://u@h/db?sslmode=verify-full", "needs sslrootcert"),
            (
                "postgres://u@h/db?sslmode=verify-ca&sslrootcert=/x",
                "verify-ca is not supported",
            ),
            (
                "postgres://u@h/db?sslmode=allow",
                "sslmode=allow is not one of",
            ),
            (
                "postgres://u@h/db?sslrootcert=/x",
                "only with sslmode=verify-full",
            ),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/no/such/file",
                "cannot read",
            ),
        ] {
            let error = format!("{:#}", target(url).err().expect(url));
            assert!(error.contains(says), "{url}: {error}");
        }
        assert!(!target("postgres://u@h/db").unwrap().verified);
        assert!(
            !target("postgres://u@h/db?sslmode=require")
                .unwrap()
                .verified
        );
    }
}
