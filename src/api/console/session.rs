//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie scoped to `/console`,
//! mapped server-side to the signed-in key's [`Principal`] and a per-session CSRF token.
//!
//! Invariants: the cookie holds only the session id, never a key or a digest of one; ids and CSRF
//! tokens are 32 bytes from the operating system's CSPRNG, compared in constant time; a session
//! ends at sign-out or [`SESSION_LIFETIME`] after it began, whichever comes first, and the table
//! never holds more than [`MAX_SESSIONS`]. The table holds signed-in sessions only: with
//! `--auth none` a visitor's session is never stored ([`Sessions::anonymous`]), its CSRF token
//! derived from its cookie's id with a key of the process's own, so reading pages leaves nothing
//! behind and a stream of cookie-less requests cannot fill the table.
//! Must not import `store`, `index` or `eval`.

use super::super::auth::{Authenticator, Principal};
use super::super::ApiError;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie's name.
const COOKIE: &str = "writ_console";
/// How long a session lasts from sign-in.
pub(super) const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most live sessions; past it the one closest to its end is dropped first.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in (or, with `--auth none`, anonymous) browser.
#[derive(Debug, Clone)]
pub(super) struct Session {
    /// The cookie's value.
    id: String,
    /// The token every changing form must carry.
    pub(super) csrf: String,
    /// The key's principal; `None` when authentication is off.
    pub(super) principal: Option<Principal>,
    expires_at: Instant,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub(super) fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The `Set-Cookie` value that hands this session to the browser.
    pub(super) fn cookie(&self) -> HeaderValue {
        let seconds = SESSION_LIFETIME.as_secs();
        let text = format!("{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={seconds}", self.id);
        // INVARIANT: the id is hex, so the value is visible ASCII.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The `Set-Cookie` value that makes the browser forget the session.
    pub(super) fn removal_cookie() -> HeaderValue {
        HeaderValue::from_static("writ_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

/// The live sessions, shared by every console request.
#[derive(Debug)]
pub(super) struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    /// The key anonymous CSRF tokens are derived with, random per process; `None` when no
    /// randomness was to be had (then anonymous visitors get no token, and can change nothing).
    anonymous_key: Option<String>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { live: Mutex::default(), anonymous_key: random_token() }
    }
}

/// True for what [`random_token`] makes: 64 lowercase hex digits.
fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 32 random bytes as hex, or `None` when the operating system cannot give randomness.
fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// Starts a session for `principal`; `None` only when no randomness is to be had.
    pub(super) fn open(&self, principal: Option<Principal>) -> Option<Session> {
        let session = Session {
            id: random_token()?,
            csrf: random_token()?,
            principal,
            expires_at: Instant::now() + SESSION_LIFETIME,
        };
        let mut live = self.live.lock();
        if live.len() >= MAX_SESSIONS {
            let now = Instant::now();
            live.retain(|_, session| session.expires_at > now);
        }
        if live.len() >= MAX_SESSIONS {
            let soonest = live.values().min_by_key(|session| session.expires_at).map(|session| session.id.clone());
            if let Some(id) = soonest {
                live.remove(&id);
            }
        }
        live.insert(session.id.clone(), session.clone());
        Some(session)
    }

    /// An anonymous visitor's session (`--auth none`), never stored: the one its cookie names,
    /// or a new id when the request has none (`true`: the cookie must be set). Its CSRF token is
    /// SHA-256 of the process's key and the id; both have a fixed length (the id is checked), so
    /// the token cannot be extended to another id's, and without the key it cannot be made.
    pub(super) fn anonymous(&self, headers: &HeaderMap) -> Option<(Session, bool)> {
        let key = self.anonymous_key.as_ref()?;
        let (id, fresh) = match cookie_value(headers).filter(|id| is_token(id)) {
            Some(id) => (id.to_string(), false),
            None => (random_token()?, true),
        };
        let digest = Sha256::new().chain_update(key).chain_update(&id).finalize();
        let csrf = digest.iter().map(|b| format!("{b:02x}")).collect();
        Some((Session { id, csrf, principal: None, expires_at: Instant::now() + SESSION_LIFETIME }, fresh))
    }

    /// How many sessions the table holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.live.lock().len()
    }

    /// The live session the request's cookie names.
    pub(super) fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie_value(headers)?;
        let mut live = self.live.lock();
        let session = live.get(id)?;
        if session.expires_at <= Instant::now() {
            live.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// Ends `session`.
    pub(super) fn close(&self, session: &Session) {
        self.live.lock().remove(&session.id);
    }
}

/// The value of the console's cookie among the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The console's [`Authenticator`]: the principal of the session the cookie names, so the API's
/// own access checks ([`super::super::auth::admit`]) decide what a console user may do.
#[derive(Debug)]
pub(super) struct SessionAuthenticator(pub(super) Arc<Sessions>);

impl Authenticator for SessionAuthenticator {
    fn authenticate<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<Principal, ApiError>> {
        let answer = self
            .0
            .find(&request.headers)
            .and_then(|session| session.principal)
            .ok_or(ApiError::Unauthenticated { code: "unauthenticated", message: "sign in to the console" });
        Box::pin(std::future::ready(answer))
    }
}
