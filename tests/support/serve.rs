//! Starting a server on a free loopback port: `writ serve` as a child process, or a router in
//! this process. Shared by the integration tests (`tests/support`) and the benches
//! (`benches/support/scale.rs` takes this file by `#[path]`), so both pick a port and wait for a
//! server the same way.
//!
//! It panics rather than returning errors: a server that cannot start is a broken fixture.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A loopback address whose port the OS has just handed out and freed again. `writ serve` is
/// given the address itself (it reports the address it was given, so port 0 would not do).
pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free loopback port")
}

/// `writ serve --listen <address>`: add the run's other flags, then [`start`] it.
pub fn writ_serve(address: SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
    command.args(["serve", "--listen", &address.to_string()]);
    command
}

/// Spawns `command` (a [`writ_serve`] on `address`) and gives it back once `GET /readyz`
/// answers 200. Panics if it exits first, or (after killing it) if it is not ready within a
/// minute.
pub fn start(mut command: Command, address: SocketAddr) -> Child {
    let mut child = command.spawn().expect("writ serve starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(address) {
        if let Some(status) = child.try_wait().expect("the child's status") {
            panic!("writ serve on {address} exited at start with {status}");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("writ serve on {address} never became ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Whether `GET /readyz` on `address` answers 200 (no connection yet, or a slow answer, is not).
fn ready(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(5)) else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(5))).is_ok()
        && stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// Serves `app` on a free loopback port in a task of the current tokio runtime, and gives the
/// address it listens on (the socket is bound before this returns, so it accepts at once).
pub async fn serve_router<S>(app: S) -> SocketAddr
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let address = listener.local_addr().expect("the listener's address");
    tokio::spawn(async move { axum::serve(listener, tower::make::Shared::new(app)).await });
    address
}
