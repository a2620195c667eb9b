//! Streamable HTTP to an upstream MCP server and back (MCP transport 2025-06-18): the request
//! goes out with only the headers the gateway chose, and the answer, JSON or an SSE stream
//! (`text/event-stream`), comes back through a rewrite that may change JSON-RPC messages (the
//! router's `*/list` filter), event by event for a stream.
//!
//! Invariant: every upstream failure (refused, reset, too large, silent past the timeout) ends
//! as an [`UpstreamError`] or, mid-stream, as a JSON-RPC `-32603` event for the pending request:
//! the client never waits longer than the timeout for the next byte of a POST's answer, and a
//! message the rewrite cannot parse passes unchanged only when the rewrite did not ask for it.
//! Knows nothing of tokens or decisions; must not import `engine`, `store` or `api`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};

/// The largest upstream answer read whole (a JSON body), and the largest single SSE event.
pub const MAX_UPSTREAM_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC "internal error": the gateway could not get an answer from the upstream.
pub const INTERNAL_ERROR: i64 = -32603;

/// The headers copied from the upstream's answer to the client (besides the status).
const RESPONSE_HEADERS: [&str; 4] = ["content-type", "cache-control", "mcp-session-id", "mcp-protocol-version"];

/// Why the upstream gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connecting or sending failed, or the connection broke.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// No answer (or no next part of it) within the timeout.
    #[error("upstream did not answer within {0:?}")]
    TimedOut(Duration),
    /// The answer is larger than [`MAX_UPSTREAM_MESSAGE_BYTES`].
    #[error("upstream answer is larger than {MAX_UPSTREAM_MESSAGE_BYTES} bytes")]
    TooLarge,
}

/// Changes one JSON-RPC message from the upstream in place; true when it changed it.
pub type Rewrite = Box<dyn FnMut(&mut Value) -> bool + Send>;

/// One upstream server: where it is, the headers it gets, and how long it may take.
pub struct Upstream {
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

/// A request to forward: what the client sent that the upstream may see.
pub struct Outgoing {
    /// `POST`, `GET` or `DELETE`.
    pub method: Method,
    /// The client's headers; only the MCP ones are copied.
    pub client_headers: HeaderMap,
    /// The body (empty for `GET` and `DELETE`).
    pub body: Bytes,
}

/// The client headers the upstream needs to keep a session and resume a stream.
const FORWARDED_HEADERS: [&str; 4] = ["accept", "mcp-session-id", "mcp-protocol-version", "last-event-id"];

impl Upstream {
    /// An upstream at `url` that gets exactly `headers` besides the MCP ones. A header that is not
    /// a valid HTTP header is an error naming it.
    pub fn new(
        client: reqwest::Client,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Upstream, String> {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a header name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("header `{name}` has a value that is not visible ASCII"))?;
            value.set_sensitive(true);
            map.append(name, value);
        }
        Ok(Upstream { client, url: url.to_string(), headers: map, timeout })
    }

    /// The timeout for an answer, and between two events of a streamed answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `outgoing` and waits, at most the timeout, for the answer's status and headers.
    pub async fn send(&self, outgoing: Outgoing) -> Result<reqwest::Response, UpstreamError> {
        let mut headers = self.headers.clone();
        for name in FORWARDED_HEADERS {
            if let Some(value) = outgoing.client_headers.get(name) {
                headers.insert(name, value.clone());
            }
        }
        if outgoing.method == Method::POST {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.entry(header::ACCEPT).or_insert(HeaderValue::from_static("application/json, text/event-stream"));
        }
        let request = self.client.request(outgoing.method, &self.url).headers(headers).body(outgoing.body);
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(UpstreamError::TimedOut(self.timeout)),
            Ok(Err(error)) if error.is_timeout() => Err(UpstreamError::TimedOut(self.timeout)),
            Ok(Err(error)) => Err(UpstreamError::Unreachable(without_url(&error))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// An error's text without the URL (which may carry credentials in its user part).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "(upstream)");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A JSON-RPC error answer to the request `id`.
pub fn error_message(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error})
}

/// The client's answer: the upstream's status and MCP headers, its body through `rewrite`.
/// `pending` is the id of the client's request still waiting for an answer, so a stream that
/// breaks off can still answer it; `idle_timeout` bounds the wait for each next event (`None`
/// for a `GET` stream, which may rightly stay silent for long).
pub async fn relay(
    response: reqwest::Response,
    rewrite: Option<Rewrite>,
    pending: Option<Value>,
    idle_timeout: Option<Duration>,
) -> Result<Response, UpstreamError> {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(name) {
            if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, value);
            }
        }
    }
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
    let body = if is_stream {
        Body::from_stream(event_stream(response.bytes_stream(), rewrite, pending, idle_timeout))
    } else {
        let mut bytes = read_whole(response, idle_timeout).await?;
        if let Some(mut rewrite) = rewrite {
            if let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) {
                if rewrite(&mut message) {
                    bytes = Bytes::from(message.to_string());
                    headers.remove(header::CONTENT_LENGTH);
                }
            }
        }
        Body::from(bytes)
    };
    let mut answer = Response::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// A whole (non-stream) answer, at most [`MAX_UPSTREAM_MESSAGE_BYTES`], within `timeout`.
async fn read_whole(response: reqwest::Response, timeout: Option<Duration>) -> Result<Bytes, UpstreamError> {
    let read = async {
        let mut chunks = response.bytes_stream();
        let mut body = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| UpstreamError::Unreachable(without_url(&e)))?;
            if body.len() + chunk.len() > MAX_UPSTREAM_MESSAGE_BYTES {
                return Err(UpstreamError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| UpstreamError::TimedOut(limit))?,
        None => read.await,
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// The state of one relayed SSE stream.
struct EventRelay {
    upstream: ByteStream,
    parser: EventParser,
    rewrite: Option<Rewrite>,
    /// The client's request id until an event answers it.
    pending: Option<Value>,
    idle_timeout: Option<Duration>,
    done: bool,
}

impl EventRelay {
    /// The bytes to send for the events complete so far.
    fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(event) = self.parser.events.pop_front() {
            out.extend_from_slice(&self.rewritten(event));
        }
        out
    }

    fn rewritten(&mut self, event: Event) -> Vec<u8> {
        // Nothing to rewrite and no request to answer on failure: the event passes as it came,
        // unparsed (every event of a `tools/call` stream).
        if self.rewrite.is_none() && self.pending.is_none() {
            return event.raw;
        }
        let Some(data) = event.data() else {
            return event.raw;
        };
        let Ok(mut message) = serde_json::from_str::<Value>(&data) else {
            return event.raw;
        };
        if self.pending.as_ref().is_some_and(|id| message.get("id") == Some(id) && message.get("method").is_none()) {
            self.pending = None;
        }
        let changed = self.rewrite.as_mut().is_some_and(|rewrite| rewrite(&mut message));
        if changed {
            event.with_data(&message.to_string())
        } else {
            event.raw
        }
    }

    /// The closing event after a failure: a JSON-RPC error for the request still pending.
    fn failure(&mut self, error: &UpstreamError) -> Vec<u8> {
        self.done = true;
        tracing::warn!(%error, "gateway: upstream stream broke off");
        match self.pending.take() {
            Some(id) => {
                let message = error_message(Some(&id), INTERNAL_ERROR, &error.to_string(), None);
                format!("event: message\ndata: {message}\n\n").into_bytes()
            }
            None => Vec::new(),
        }
    }
}

fn event_stream(
    upstream: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    rewrite: Option<Rewrite>,
    pending: Option<Value>,
    idle_timeout: Option<Duration>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let relay = EventRelay {
        upstream: Box::pin(upstream),
        parser: EventParser::default(),
        rewrite,
        pending,
        idle_timeout,
        done: false,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        loop {
            if relay.done {
                return None;
            }
            let next = match relay.idle_timeout {
                Some(limit) => match tokio::time::timeout(limit, relay.upstream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let out = relay.failure(&UpstreamError::TimedOut(limit));
                        return Some((Ok(Bytes::from(out)), relay));
                    }
                },
                None => relay.upstream.next().await,
            };
            let out = match next {
                Some(Ok(chunk)) => match relay.parser.push(&chunk) {
                    Ok(()) => relay.drain(),
                    Err(error) => relay.failure(&error),
                },
                Some(Err(error)) => relay.failure(&UpstreamError::Unreachable(without_url(&error))),
                None => {
                    relay.parser.finish();
                    let mut out = relay.drain();
                    if relay.pending.is_some() {
                        out.extend(relay.failure(&UpstreamError::Unreachable(
                            "the stream ended without answering the request".into(),
                        )));
                    }
                    relay.done = true;
                    out
                }
            };
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), relay));
            }
        }
    })
}

/// One server-sent event, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    /// Its lines, without line ends.
    lines: Vec<String>,
    /// The bytes as received, through the blank line that ended it.
    raw: Vec<u8>,
}

impl Event {
    /// The `data` lines joined by `\n` (the SSE rule), or `None` when the event has none.
    fn data(&self) -> Option<String> {
        let mut data: Option<String> = None;
        for line in &self.lines {
            let value = match line.strip_prefix("data") {
                Some("") => "",
                Some(rest) => match rest.strip_prefix(':') {
                    Some(value) => value.strip_prefix(' ').unwrap_or(value),
                    None => continue,
                },
                None => continue,
            };
            match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
        data
    }

    /// The event with its data replaced by `data` (one line: compact JSON has no line break);
    /// `id`, `event` and `retry` lines are kept in place.
    fn with_data(&self, data: &str) -> Vec<u8> {
        let mut out = String::new();
        let mut written = false;
        for line in &self.lines {
            if line.starts_with("data") {
                if !written {
                    out.push_str("data: ");
                    out.push_str(data);
                    out.push('\n');
                    written = true;
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        out.into_bytes()
    }
}

/// Splits an SSE byte stream into events (lines ended by `\n` or `\r\n`; a blank line ends an
/// event), holding back an incomplete one.
#[derive(Default)]
struct EventParser {
    buffer: Vec<u8>,
    /// The lines of the current event so far.
    lines: Vec<String>,
    /// Where the current event starts in `buffer`.
    event_start: usize,
    /// How far `buffer` has been split into lines.
    scanned: usize,
    events: VecDeque<Event>,
}

impl EventParser {
    fn push(&mut self, chunk: &[u8]) -> Result<(), UpstreamError> {
        self.buffer.extend_from_slice(chunk);
        while let Some(offset) = self.buffer[self.scanned..].iter().position(|&b| b == b'\n') {
            let end = self.scanned + offset;
            let line = &self.buffer[self.scanned..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.scanned = end + 1;
            if line.is_empty() {
                let raw = self.buffer[self.event_start..self.scanned].to_vec();
                self.events.push_back(Event { lines: std::mem::take(&mut self.lines), raw });
                self.event_start = self.scanned;
            } else {
                self.lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
        if self.event_start > 0 {
            self.buffer.drain(..self.event_start);
            self.scanned -= self.event_start;
            self.event_start = 0;
        }
        if self.buffer.len() > MAX_UPSTREAM_MESSAGE_BYTES {
            return Err(UpstreamError::TooLarge);
        }
        Ok(())
    }

    /// Ends the stream: an unterminated last event still counts (it is passed on as it came).
    fn finish(&mut self) {
        if self.event_start < self.buffer.len() {
            let tail = &self.buffer[self.scanned..];
            if !tail.is_empty() {
                self.lines.push(String::from_utf8_lossy(tail.strip_suffix(b"\r").unwrap_or(tail)).into_owned());
            }
            let mut raw = self.buffer[self.event_start..].to_vec();
            raw.extend_from_slice(b"\n\n");
            self.events.push_back(Event { lines: std::mem::take(&mut self.lines), raw });
        }
        self.buffer.clear();
        self.event_start = 0;
        self.scanned = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<Event> {
        let mut parser = EventParser::default();
        for chunk in chunks {
            parser.push(chunk.as_bytes()).unwrap();
        }
        parser.finish();
        parser.events.into_iter().collect()
    }

    #[test]
    fn events_split_at_blank_lines_across_chunk_boundaries() {
        let got =
            events(&["id: 1\nevent: mess", "age\ndata: {\"a\"", ":1}\r\n\r", "\ndata: x\ndata: y\n\n: comment\n\n"]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].lines, ["id: 1", "event: message", "data: {\"a\":1}"]);
        assert_eq!(got[0].data().as_deref(), Some("{\"a\":1}"));
        assert_eq!(got[0].raw, b"id: 1\nevent: message\ndata: {\"a\":1}\r\n\r\n");
        assert_eq!(got[1].data().as_deref(), Some("x\ny"));
        assert_eq!(got[2].data(), None, "a comment carries no data");
    }

    #[test]
    fn replaced_data_keeps_the_other_fields() {
        let event = &events(&["id: 7\ndata: {\"x\":\ndata: 1}\nretry: 5\n\n"])[0];
        assert_eq!(event.data().as_deref(), Some("{\"x\":\n1}"));
        assert_eq!(String::from_utf8(event.with_data("{}")).unwrap(), "id: 7\ndata: {}\nretry: 5\n\n");
    }

    #[test]
    fn an_unterminated_last_event_is_kept_and_a_huge_one_refused() {
        let got = events(&["data: 1\n\ndata: 2"]);
        assert_eq!(got.iter().map(Event::data).collect::<Vec<_>>(), [Some("1".into()), Some("2".into())]);
        let mut parser = EventParser::default();
        let big = vec![b'x'; MAX_UPSTREAM_MESSAGE_BYTES + 1];
        assert!(matches!(parser.push(&big), Err(UpstreamError::TooLarge)));
    }
}
