//! Serving the router on a TCP listener: plain HTTP, or HTTPS through rustls when `writ serve` is
//! given `--tls-cert` and `--tls-key`, until a shutdown future resolves.
//!
//! Invariant: a bad certificate or key is reported before anything listens (see [`tls_config`]);
//! once the shutdown future resolves no new connection is accepted, and requests already in
//! flight get [`GRACE`] to finish.
//! Must not import `store`, `index` or `eval`; the router comes in ready-made.

use axum::Router;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long requests in flight may run on after a shutdown signal (TLS connections).
pub const GRACE: Duration = Duration::from_secs(10);

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why serving could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The certificate or key cannot be used.
    #[error("tls: {0}")]
    Tls(String),
    /// The listener failed (the cause is the source, so an error chain says it once).
    #[error("the listener failed")]
    Io(#[from] std::io::Error),
}

/// Reads and checks the certificate chain and key into a rustls server configuration
/// (TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, the `ring` provider).
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
        ServeError::Tls(format!("{what} `{}`: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("cannot read certificate file", &files.cert, &e))?;
    if certs.is_empty() {
        return Err(bad("no certificate in", &files.cert, &"expected a PEM `CERTIFICATE` block"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("cannot read key file", &files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(format!("certificate and key do not make a usable pair: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
        }
        Some(config) => {
            let handle = axum_server::Handle::new();
            let on_signal = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                on_signal.graceful_shutdown(Some(GRACE));
            });
            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
            axum_server::tls_rustls::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app.into_make_service())
                .await?;
        }
    }
    Ok(())
}
