//! Serving the router on a TCP listener: plain HTTP, or HTTPS through rustls when `writ serve` is
//! given `--tls-cert` and `--tls-key`, until a shutdown future resolves.
//!
//! Invariant: a bad certificate or key is reported before anything listens (see [`tls_config`]);
//! once the shutdown future resolves no new connection is accepted, and requests already in
//! flight get [`GRACE`] to finish. On plain HTTP, even a request hyper cannot parse (and answers
//! before the router runs) gets a `{"code", "message"}` body.
//! Must not import `store`, `index` or `eval`; the router comes in ready-made.

use super::Api;
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
    app: Api,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    listener.set_nonblocking(true)?;
    match tls {
        None => {
            let listener = JsonRejections(tokio::net::TcpListener::from_std(listener)?);
            axum::serve(listener, tower::make::Shared::new(app)).with_graceful_shutdown(shutdown).await?;
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
                .map(JsonRejectionAcceptor)
                .handle(handle)
                .serve(tower::make::Shared::new(app))
                .await?;
        }
    }
    Ok(())
}

/// The plain-HTTP listener: each connection's answers pass through [`JsonRejectionStream`].
struct JsonRejections(tokio::net::TcpListener);

impl axum::serve::Listener for JsonRejections {
    type Io = JsonRejectionStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.0).await;
        (JsonRejectionStream { inner: stream, pending: Vec::new() }, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The TLS acceptor's streams, after the handshake, pass through [`JsonRejectionStream`] too, so
/// HTTPS answers hyper's parse errors with the same JSON body as plain HTTP.
#[derive(Clone)]
struct JsonRejectionAcceptor<A>(A);

impl<A, I, S> axum_server::accept::Accept<I, S> for JsonRejectionAcceptor<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = JsonRejectionStream<A::Stream>;
    type Service = A::Service;
    type Future = std::pin::Pin<Box<dyn Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((JsonRejectionStream { inner: stream, pending: Vec::new() }, service))
        })
    }
}

/// A connection whose HTTP/1 parse-error answers get a `{"code", "message"}` body.
///
/// hyper answers a request it cannot parse (a path holding `<`, `>`, a space or a byte above
/// 127 unencoded, as `curl 'http://host/stores/<STORE>/check'` sends; a request line or headers
/// too long) before any router runs, with an empty-bodied head (`content-length: 0`,
/// `connection: close`), and offers no hook to change it. Every answer of the router has a body,
/// and no JSON body holds a raw CR LF, so such a head is found in the bytes written and given a
/// JSON body in place. Reads pass through untouched.
struct JsonRejectionStream<S> {
    inner: S,
    /// Rewritten bytes not yet written to `inner`.
    pending: Vec<u8>,
}

/// The head hyper writes for a request it cannot parse, up to its status code.
const PARSE_ERROR_PREFIX: &[u8] = b"HTTP/1.1 4";
const PARSE_ERROR_HEADERS: &[u8] = b"connection: close\r\ncontent-length: 0\r\n";

/// `buffer` with a parse-error head in it given a JSON body, if it holds one.
fn with_json_rejection(buffer: &[u8]) -> Option<Vec<u8>> {
    let start = find(buffer, PARSE_ERROR_PREFIX)?;
    let head_length = find(&buffer[start..], b"\r\n\r\n")? + 4;
    let head = &buffer[start..start + head_length];
    let status_line_end = find(head, b"\r\n")?;
    if !head[status_line_end + 2..].starts_with(PARSE_ERROR_HEADERS) {
        return None;
    }
    let status = head.get(9..12)?;
    let (code, message) = match status {
        b"414" => ("uri_too_long", "the request's URI is longer than the server reads"),
        b"431" => ("headers_too_large", "the request's headers are larger than the server reads"),
        _ => (
            "validation_error",
            "the request is not valid HTTP/1.1: a path must percent-encode spaces, `<`, `>`, backticks \
             and bytes above 127 (write `%3C` for `<`)",
        ),
    };
    let body = format!("{{\"code\":\"{code}\",\"message\":\"{message}\"}}");
    let mut out = Vec::with_capacity(buffer.len() + body.len() + 64);
    out.extend_from_slice(&buffer[..start]);
    out.extend_from_slice(&head[..status_line_end + 2]);
    out.extend_from_slice(b"connection: close\r\ncontent-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(&head[status_line_end + 2 + PARSE_ERROR_HEADERS.len()..]);
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(&buffer[start + head_length..]);
    Some(out)
}

/// Runs over every response written, so it uses `memchr`'s vectorised search, not a byte window.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

impl<S: tokio::io::AsyncWrite + Unpin> JsonRejectionStream<S> {
    /// Writes out `pending`; ready once it is empty.
    fn poll_pending(&mut self, context: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while !self.pending.is_empty() {
            match std::pin::Pin::new(&mut self.inner).poll_write(context, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    self.pending.drain(..written);
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes out `pending`, then polls `then` on the inner stream.
    fn after_pending(
        &mut self,
        context: &mut std::task::Context<'_>,
        then: impl FnOnce(std::pin::Pin<&mut S>, &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.poll_pending(context) {
            std::task::Poll::Ready(Ok(())) => then(std::pin::Pin::new(&mut self.inner), context),
            other => other,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for JsonRejectionStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for JsonRejectionStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        match self.poll_pending(context) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some(rewritten) = with_json_rejection(buffer) {
            // Taken whole: the caller counts `buffer` as written, the rewrite drains later.
            self.pending = rewritten;
            let _ = self.poll_pending(context);
            return Poll::Ready(Ok(buffer.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(context, buffer)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.after_pending(context, |inner, context| inner.poll_flush(context))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.after_pending(context, |inner, context| inner.poll_shutdown(context))
    }
}

#[cfg(test)]
mod tests {
    use super::with_json_rejection;

    #[test]
    fn a_parse_error_head_gets_a_json_body_and_other_answers_pass() {
        let head = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let rewritten = String::from_utf8(with_json_rejection(head).unwrap()).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/json") && head.ends_with("date: x"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "validation_error");
        let too_long = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(with_json_rejection(too_long).unwrap()).unwrap().contains("uri_too_long"));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(with_json_rejection(ours), None);
        assert_eq!(with_json_rejection(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), None);
    }
}
