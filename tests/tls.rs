//! HTTPS serving (`writ serve --tls-cert FILE --tls-key FILE`): a self-signed pair generated per
//! test, a real TLS client on loopback, plain HTTP refused on the TLS port, graceful shutdown.

use crate::support::TempDir;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use writ::api::serve::{serve, tls_config, ServeError, TlsFiles};
use writ::store::MemoryStore;
use writ::{Engine, EngineConfig};

/// A fresh folder holding `cert.pem` and `key.pem` for `localhost`, and the certificate (DER);
/// the folder goes when the returned [`TempDir`] does.
fn self_signed_pair(name: &str) -> (TlsFiles, rustls::pki_types::CertificateDer<'static>, TempDir) {
    let dir = TempDir::created(&format!("tls-{name}"));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let files = TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
    std::fs::write(&files.cert, certified.cert.pem()).unwrap();
    std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
    (files, certified.cert.der().clone(), dir)
}

fn client(trusted: rustls::pki_types::CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends one HTTP/1.1 request over `stream` and returns everything the server sent back.
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A refused connection may end in a reset rather than a clean close; both end the answer.
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A TLS server of a fresh in-memory engine on a loopback port: its address, the certificate a
/// client must trust, the sender that stops it, and its task.
fn start_tls_server(
    name: &str,
) -> (
    std::net::SocketAddr,
    rustls::pki_types::CertificateDer<'static>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), ServeError>>,
) {
    let (files, certificate, _dir) = self_signed_pair(name);
    let engine = Arc::new(Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, writ::api::router(engine), Some(tls_config(&files).unwrap()), async {
        let _ = stopped.await;
    }));
    (address, certificate, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_api_refuses_plain_http_and_shuts_down_gracefully() {
    let (address, certificate, stop, server) = start_tls_server("serve");

    let body = r#"{"name":"over-tls"}"#;
    let request = format!(
        "POST /stores HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let tcp = TcpStream::connect(address).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = client(certificate.clone()).connect(server_name.clone(), tcp).await.unwrap();
    let answer = exchange(&mut tls, &request).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "HTTPS create store answered: {answer}");
    assert!(answer.contains(r#""name":"over-tls""#), "{answer}");

    let mut plain = TcpStream::connect(address).await.unwrap();
    let answer = exchange(&mut plain, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(!answer.contains("HTTP/1.1"), "plain HTTP on the TLS port must not be served, got: {answer:?}");

    let untrusting = client(self_signed_pair("other").1);
    let tcp = TcpStream::connect(address).await.unwrap();
    assert!(untrusting.connect(server_name, tcp).await.is_err(), "a client that trusts another certificate fails");

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await.expect("server stops after the signal");
    finished.unwrap().unwrap();
    assert!(TcpStream::connect(address).await.is_err(), "nothing listens after shutdown");
}

/// Regression: over HTTPS, a request hyper cannot parse (`<STORE>` pasted into a path, as a
/// README reader might) was answered 400 with an empty body; plain HTTP already gave JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_https_parse_errors_got_an_empty_body() {
    let (address, certificate, stop, server) = start_tls_server("parse-error");

    let tcp = TcpStream::connect(address).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = client(certificate).connect(server_name, tcp).await.unwrap();
    let request = "POST /stores/<STORE>/check HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}";
    let answer = exchange(&mut tls, request).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("content-type: application/json"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(json["code"], "validation_error", "{answer}");
    assert!(json["message"].as_str().unwrap().contains("%3C"), "{answer}");

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await.expect("server stops after the signal");
    finished.unwrap().unwrap();
}

#[test]
fn unusable_certificate_or_key_files_are_named_in_the_error() {
    let (files, _, _dir) = self_signed_pair("bad");
    let missing = TlsFiles { cert: PathBuf::from("/nonexistent/cert.pem"), key: files.key.clone() };
    let error = tls_config(&missing).unwrap_err();
    assert!(matches!(&error, ServeError::Tls(m) if m.contains("/nonexistent/cert.pem")), "{error}");

    let swapped = TlsFiles { cert: files.key.clone(), key: files.cert.clone() };
    let error = tls_config(&swapped).unwrap_err();
    assert!(error.to_string().contains("cert"), "{error}");

    let (other, _, _other_dir) = self_signed_pair("bad-other");
    let mismatched = TlsFiles { cert: files.cert.clone(), key: other.key };
    assert!(tls_config(&mismatched).is_err(), "a key that does not match the certificate is refused");
}
