//! Authentication and role-based access: the [`Auth`] setting, the pluggable [`Authenticator`]
//! that finds a request's [`Principal`] (pre-shared keys, [`KeySet`], checked against
//! `Authorization: Bearer <key>`, are Writ's own), the [`Access`] each endpoint declares where it
//! is routed, and [`admit`], which the route table layers onto every endpoint.
//!
//! Roles, each including the ones below it: `admin` (create and delete stores, write models and
//! assertions), `writer` (write and delete tuples), `reader` (every read: check, batch-check,
//! expand, list objects and users, read, changes, AuthZEN, Writ's read-only agent routes, and
//! every `GET`). Beside that line, `approver` (reads, and approving or denying approvals,
//! DESIGN §12): `admin` includes it, `reader` and `writer` do not. A key may be limited to a list of stores: elsewhere it gets 403, `GET /stores`
//! lists only its stores, and calls that are not about one store (`POST /stores`, `/metrics`)
//! need an unlimited key.
//!
//! Invariants: keys are held only as SHA-256 digests and compared in constant time; no key, and no
//! digest of one, is ever logged or printed by `Debug`. Nothing is routed without an [`Access`];
//! a path no route serves needs an unlimited `admin` key unless it is a read (fail closed);
//! `/healthz`, `/readyz`, `/openapi.json` and the root AuthZEN discovery document are open.
//! Missing key → 401 `bearer_token_missing`; unknown key → 401 `unauthenticated`; wrong role or
//! store → 403 `forbidden` (OpenFGA's codes).
//! Must not import `store`, `index` or `eval`.

use super::{ApiError, AppState};
use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a key may do; which role includes which is [`Role::includes`] alone (an approver is
/// not ordered among the others, so the enum has no order to compare by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only.
    Reader,
    /// Reads and tuple writes.
    Writer,
    /// Everything, including stores and models.
    Admin,
    /// Reads, and approving or denying approvals; not tuple writes.
    Approver,
}

impl Role {
    /// Whether a principal with this role may do what `needed` may: the one place that orders
    /// roles, so a role outside the line (an approver of pending changes) changes only this.
    pub fn includes(self, needed: Role) -> bool {
        matches!(
            (self, needed),
            (Role::Admin, _) | (_, Role::Reader) | (Role::Approver, Role::Approver) | (Role::Writer, Role::Writer)
        )
    }

    /// Every role, in the order the compact key form's error lists them.
    const ALL: [Role; 4] = [Role::Admin, Role::Writer, Role::Reader, Role::Approver];

    /// The role a compact key entry names (`admin`, `writer`, `reader`, `approver`).
    fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// The roles as a compact entry's prefixes, for the error that refuses another:
    /// `` `admin:`, `writer:`, `reader:` or `approver:` ``. Built from [`Role::ALL`] so a new role
    /// cannot be left out of it.
    fn compact_prefixes() -> String {
        let prefixes: Vec<String> = Role::ALL.iter().map(|role| format!("`{}:`", role.name())).collect();
        match prefixes.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
            Role::Approver => "approver",
        }
    }
}

/// One accepted key: its digest, role and optional store list.
#[derive(Clone)]
struct KeyEntry {
    digest: [u8; 32],
    principal: Principal,
}

/// Who a request was admitted as; handlers find it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's label from the key file (never the key), for logs.
    pub name: Option<String>,
    /// The key's role.
    pub role: Role,
    /// The stores the key is limited to; `None` = every store.
    pub stores: Option<Arc<[String]>>,
    /// A short id for the key that cannot be turned back into it (`key:` and 12 hex digits of a
    /// hash of its digest), for records of who did what when the key has no name.
    pub key_id: String,
}

impl Principal {
    /// Who this key is in records: its configured name, else its [`Principal::key_id`].
    pub fn actor(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.key_id.clone())
    }

    /// Whether the key may touch `store_id`.
    pub fn allows_store(&self, store_id: &str) -> bool {
        self.stores.as_ref().is_none_or(|stores| stores.iter().any(|s| s == store_id))
    }
}

/// The accepted keys. `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.entries.len())
    }
}

/// A key file or compact key list that cannot be used; messages never contain a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a key file.
    #[error("key file is not valid: {0}")]
    Syntax(String),
    /// One entry is unusable.
    #[error("key entry {index}: {reason}")]
    Entry {
        /// 1-based position of the entry.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No keys at all.
    #[error("no keys given")]
    Empty,
}

/// One key as written in a key file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    role: Role,
    #[serde(default)]
    stores: Option<Vec<String>>,
}

/// A key file: a list of entries, or a map with a `keys` list.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyFile {
    List(Vec<KeyFileEntry>),
    Map {
        #[serde(rename = "keys")]
        entries: Vec<KeyFileEntry>,
    },
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `key:` and the first 12 hex digits of SHA-256(`writ key id` ‖ digest): stable for a key, short,
/// and no help in recovering it (the key's own digest is never shown).
fn key_id(digest: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"writ key id");
    hasher.update(digest);
    let hash = hasher.finalize();
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("key:{hex}")
}

fn parse_hex_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A key must fit in an HTTP header after `Bearer `: visible ASCII, no spaces.
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic())
}

impl KeySet {
    /// Reads a key file: YAML (or JSON, which is YAML), a list of
    /// `{name?, key | sha256, role, stores?}` entries, optionally under a top-level `keys`.
    pub fn parse_file(text: &str) -> Result<KeySet, KeyError> {
        let file: KeyFile = serde_norway::from_str(text).map_err(|e| KeyError::Syntax(redacted_yaml_error(&e)))?;
        let entries = match file {
            KeyFile::List(entries) | KeyFile::Map { entries } => entries,
        };
        let mut set = KeySet::default();
        for (i, entry) in entries.into_iter().enumerate() {
            let index = i + 1;
            let bad = |reason: &str| KeyError::Entry { index, reason: reason.to_string() };
            let digest = match (entry.key, entry.sha256) {
                (Some(key), None) if valid_key(&key) => sha256(key.as_bytes()),
                (Some(_), None) => return Err(bad("`key` must be non-empty visible ASCII without spaces")),
                (None, Some(hex)) => parse_hex_digest(&hex.to_ascii_lowercase())
                    .ok_or_else(|| bad("`sha256` must be 64 hex digits (the SHA-256 of the key)"))?,
                _ => return Err(bad("give exactly one of `key` and `sha256`")),
            };
            set.push(index, digest, entry.name, entry.role, entry.stores)?;
        }
        if set.entries.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(set)
    }

    /// Reads the compact form `role:key[:store+store...]`, entries separated by commas (for
    /// `WRIT_PRESHARED_KEYS`). Keys in this form may not contain `,` or `:`.
    pub fn parse_compact(text: &str) -> Result<KeySet, KeyError> {
        let mut set = KeySet::default();
        for (i, item) in text.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            let index = i + 1;
            let bad = |reason: &str| KeyError::Entry { index, reason: reason.to_string() };
            let mut parts = item.split(':');
            let role = parts
                .next()
                .and_then(Role::from_name)
                .ok_or_else(|| bad(&format!("must start with {}", Role::compact_prefixes())))?;
            let key = parts.next().filter(|k| valid_key(k)).ok_or_else(|| bad("needs a key after the role"))?;
            let stores = parts.next().map(|list| list.split('+').map(str::to_string).collect());
            if parts.next().is_some() {
                return Err(bad("has more than `role:key:stores`"));
            }
            set.push(index, sha256(key.as_bytes()), None, role, stores)?;
        }
        if set.entries.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(set)
    }

    fn push(
        &mut self,
        index: usize,
        digest: [u8; 32],
        name: Option<String>,
        role: Role,
        stores: Option<Vec<String>>,
    ) -> Result<(), KeyError> {
        let bad = |reason: &str| KeyError::Entry { index, reason: reason.to_string() };
        if let Some(stores) = &stores {
            if stores.is_empty() || stores.iter().any(|s| s.trim().is_empty()) {
                return Err(bad("`stores` must list store ids (omit it for every store)"));
            }
        }
        if self.entries.iter().any(|e| e.digest == digest) {
            return Err(bad("repeats an earlier key"));
        }
        let key_id = key_id(&digest);
        let principal = Principal { name, role, stores: stores.map(Arc::from), key_id };
        self.entries.push(KeyEntry { digest, principal });
        Ok(())
    }

    /// Adds every key of `other` (error on a repeated key).
    pub fn merge(&mut self, other: KeySet) -> Result<(), KeyError> {
        for (i, entry) in other.entries.into_iter().enumerate() {
            let KeyEntry { digest, principal } = entry;
            let stores = principal.stores.map(|s| s.to_vec());
            self.push(i + 1, digest, principal.name, principal.role, stores)?;
        }
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal of a presented key. The key's digest is compared against every entry in
    /// constant time, without stopping at a match.
    pub fn authenticate(&self, presented: &str) -> Option<&Principal> {
        let digest = sha256(presented.as_bytes());
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(&entry.principal);
            }
        }
        found
    }
}

/// serde_norway's messages may quote the offending scalar (a key); keep only its position.
fn redacted_yaml_error(error: &serde_norway::Error) -> String {
    match error.location() {
        Some(at) => format!("not a list of `{{key | sha256, role, stores?}}` entries (line {})", at.line()),
        None => "not a list of `{key | sha256, role, stores?}` entries".to_string(),
    }
}

/// Finds who a request comes from: the one pluggable step of authentication. Writ's pre-shared
/// keys ([`KeySet`]) are one; a console's session cookie or a gateway's JWT can be others.
/// What the principal may then call is decided by the route's [`Access`], the same for all.
pub trait Authenticator: std::fmt::Debug + Send + Sync {
    /// The principal the request proves, or the 401 to answer ([`ApiError::Unauthenticated`]).
    fn authenticate<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<Principal, ApiError>>;
}

impl Authenticator for KeySet {
    fn authenticate<'a>(&'a self, request: &'a Parts) -> BoxFuture<'a, Result<Principal, ApiError>> {
        let answer = match bearer(request) {
            None => Err(ApiError::Unauthenticated { code: "bearer_token_missing", message: "missing bearer token" }),
            Some(presented) => KeySet::authenticate(self, presented).cloned().ok_or_else(|| {
                tracing::info!("rejected an unknown key");
                ApiError::Unauthenticated { code: "unauthenticated", message: "unauthenticated" }
            }),
        };
        Box::pin(std::future::ready(answer))
    }
}

/// How callers are authenticated.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nobody is authenticated; every caller may do everything.
    #[default]
    None,
    /// `Authorization: Bearer <key>` with one of these keys.
    Preshared(Arc<KeySet>),
    /// Principals found by another [`Authenticator`] (a session, a token).
    With(Arc<dyn Authenticator>),
}

impl Auth {
    /// True when nobody is authenticated: [`admit`] then lets every request by untouched, so
    /// the router need not put its check in front of any endpoint.
    pub(super) fn admits_everyone(&self) -> bool {
        self.authenticator().is_none()
    }

    fn authenticator(&self) -> Option<&dyn Authenticator> {
        match self {
            Auth::None => None,
            Auth::Preshared(keys) => Some(keys.as_ref()),
            Auth::With(authenticator) => Some(authenticator.as_ref()),
        }
    }
}

/// What calling an endpoint needs; every route declares one per method where it is routed
/// (see [`super::routes`]), so a route cannot be served without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No principal: health, discovery and the API's own description.
    Open,
    /// A principal with at least this role, allowed on this scope.
    Role(Role, Scope),
}

/// Why [`Access::admits`] refuses a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The principal's role does not include this one.
    Role(Role),
    /// The principal is not allowed on the store (or, with no store, is limited to stores).
    Store,
}

/// Which stores an endpoint touches, and so which store-limited principals may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The store named by the route's `{store_id}`.
    PathStore,
    /// The store the root AuthZEN routes answer for; any store when none is configured.
    AuthzenStore,
    /// No particular store: a store-limited principal may call it (the handler narrows the answer).
    AnyStore,
    /// Every store, or none yet (creating one): only a principal not limited to stores.
    Global,
}

impl Access {
    /// A reader on `scope`.
    pub const fn reader(scope: Scope) -> Access {
        Access::Role(Role::Reader, scope)
    }

    /// A writer on `scope`.
    pub const fn writer(scope: Scope) -> Access {
        Access::Role(Role::Writer, scope)
    }

    /// An approver (or admin) on `scope`.
    pub const fn approver(scope: Scope) -> Access {
        Access::Role(Role::Approver, scope)
    }

    /// An admin on `scope`.
    pub const fn admin(scope: Scope) -> Access {
        Access::Role(Role::Admin, scope)
    }

    /// Whether `principal` may call an endpoint needing this access, on `store_id` when the
    /// scope names a store: the one rule [`admit`] enforces and the console asks before it
    /// shows a change control, so neither restates the other. `Err` says what fails.
    pub(crate) fn admits(self, principal: &Principal, store_id: Option<&str>) -> Result<(), Refused> {
        let Access::Role(role, scope) = self else { return Ok(()) };
        if !principal.role.includes(role) {
            return Err(Refused::Role(role));
        }
        let store_ok = match (store_id, scope) {
            (Some(store_id), _) => principal.allows_store(store_id),
            (None, Scope::Global) => principal.stores.is_none(),
            (None, _) => true,
        };
        if store_ok {
            Ok(())
        } else {
            Err(Refused::Store)
        }
    }

    /// What a path no route serves needs: a read may learn it is not there, anything else fails
    /// closed to an admin not limited to stores.
    pub(super) fn unknown_route(method: &Method) -> Access {
        if method == Method::GET || method == Method::HEAD {
            Access::reader(Scope::AnyStore)
        } else {
            Access::admin(Scope::Global)
        }
    }

    /// What a method a route does not serve needs before it is answered 405: as for an unknown
    /// route, a read needs a reader and anything else an admin, on the route's store if it names
    /// one; a route open to every method it serves stays open.
    pub(super) fn unserved_method(method: &Method, served: &[Access], names_store: bool) -> Access {
        if served.iter().all(|access| *access == Access::Open) {
            return Access::Open;
        }
        match (Access::unknown_route(method), names_store) {
            (Access::Role(role, _), true) => Access::Role(role, Scope::PathStore),
            (access, _) => access,
        }
    }
}

/// The key in `Authorization: Bearer <key>` (scheme case-insensitive).
fn bearer(request: &Parts) -> Option<&str> {
    let value = request.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim()).filter(|key| !key.is_empty())
}

/// Admits a request to an endpoint needing `access`: finds its principal (kept in the request's
/// extensions for handlers) or answers 401, then answers 403 unless the role and store fit.
pub(super) async fn admit(state: &AppState, access: Access, request: Request) -> Result<Request, ApiError> {
    admit_in(state, access, request, None).await
}

/// [`admit`] for a request whose `{store_id}` was read from its path before routing (the check's
/// dispatch in [`super::Api`]), so there are no route parameters to take it from.
pub(super) async fn admit_store(
    state: &AppState,
    access: Access,
    request: Request,
    store_id: &str,
) -> Result<Request, ApiError> {
    admit_in(state, access, request, Some(store_id)).await
}

/// [`admit`], with the path's store id given or taken from the route's parameters.
async fn admit_in(
    state: &AppState,
    access: Access,
    request: Request,
    path_store_id: Option<&str>,
) -> Result<Request, ApiError> {
    let Some(authenticator) = state.auth.authenticator() else { return Ok(request) };
    let Access::Role(_, scope) = access else { return Ok(request) };
    let (mut parts, body) = request.into_parts();
    let principal = authenticator.authenticate(&parts).await?;
    let store_id = match scope {
        Scope::PathStore => match path_store_id {
            Some(store_id) => Some(store_id.to_string()),
            None => Some(path_store(&mut parts).await),
        },
        Scope::AuthzenStore => state.authzen_store.clone(),
        Scope::AnyStore | Scope::Global => None,
    };
    if let Err(refused) = access.admits(&principal, store_id.as_deref()) {
        let message = match (refused, &store_id) {
            (Refused::Role(role), _) => format!(
                "the principal is not authorized to perform the action: `{} {}` needs the `{}` role, the key has `{}`",
                parts.method,
                parts.uri.path(),
                role.name(),
                principal.role.name()
            ),
            (Refused::Store, Some(store_id)) => {
                format!("the principal is not authorized to perform the action: the key is not allowed on store `{store_id}`")
            }
            (Refused::Store, None) => format!(
                "the principal is not authorized to perform the action: `{} {}` needs a key not limited to stores",
                parts.method,
                parts.uri.path()
            ),
        };
        return Err(ApiError::Forbidden(message));
    }
    if let Some(name) = &principal.name {
        tracing::debug!(key = %name, "authenticated");
    }
    parts.extensions.insert(principal);
    Ok(Request::from_parts(parts, body))
}

/// The route's `{store_id}`, percent-decoded as the handler sees it; empty (a store no key is
/// limited to) when it does not decode, which the handler refuses anyway.
async fn path_store(parts: &mut Parts) -> String {
    let params = RawPathParams::from_request_parts(parts, &()).await;
    params
        .ok()
        .and_then(|params| params.iter().find(|(name, _)| *name == "store_id").map(|(_, id)| id.to_string()))
        .unwrap_or_default()
}

/// The route layer of every endpoint: [`admit`], then the handler.
pub(super) async fn enforce(state: AppState, access: Access, request: Request, next: Next) -> Response {
    match admit(&state, access, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => closing(refusal.into_response()),
    }
}

/// An answer sent before the request's body was read, marked `Connection: close`: hyper closes
/// such a connection once the answer is out, and a client told so beforehand does not send its
/// next request into a socket that is about to close.
pub(super) fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_accept_keys_and_digests_and_name_bad_entries() {
        let digest = format!("{:x}", Sha256::digest(b"hashed-key"));
        let text = format!(
            "keys:\n  - {{key: plain-key, role: admin}}\n  - {{sha256: {digest}, role: reader, stores: [01A]}}\n"
        );
        let keys = KeySet::parse_file(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.authenticate("plain-key").unwrap().role, Role::Admin);
        let reader = keys.authenticate("hashed-key").unwrap();
        assert!(reader.allows_store("01A") && !reader.allows_store("01B"));
        assert_eq!(reader.key_id, key_id(&sha256(b"hashed-key")));
        assert!(reader.actor().starts_with("key:") && reader.actor().len() == 16, "{}", reader.actor());
        assert!(!digest.contains(&reader.actor()["key:".len()..]), "the id is not a piece of the digest");
        assert!(keys.authenticate("nope").is_none());
        let json = r#"[{"key": "k1", "role": "writer"}]"#;
        assert_eq!(KeySet::parse_file(json).unwrap().authenticate("k1").unwrap().role, Role::Writer);
        for bad in [
            "- {key: a, sha256: b, role: admin}",
            "- {role: admin}",
            "- {key: 'has space', role: admin}",
            "- {sha256: abc, role: admin}",
            "- {key: a, role: admin, stores: []}",
            "- {key: a, role: admin}\n- {key: a, role: reader}",
        ] {
            assert!(matches!(KeySet::parse_file(bad), Err(KeyError::Entry { .. })), "{bad}");
        }
        assert!(matches!(KeySet::parse_file("- {key: a, role: root}"), Err(KeyError::Syntax(_))));
        assert!(matches!(KeySet::parse_file("- {key: a, role: admin, store: [x]}"), Err(KeyError::Syntax(_))));
        assert_eq!(KeySet::parse_file("[]").unwrap_err(), KeyError::Empty);
        let error = KeySet::parse_file("- {key: secret-value, role: nope}").unwrap_err().to_string();
        assert!(!error.contains("secret-value"), "{error}");
    }

    #[test]
    fn compact_keys_read_role_key_and_stores() {
        let keys = KeySet::parse_compact("admin:k1, reader:k2:01A+01B").unwrap();
        assert_eq!(keys.authenticate("k1").unwrap().role, Role::Admin);
        let reader = keys.authenticate("k2").unwrap();
        assert!(reader.allows_store("01B") && !reader.allows_store("01C"));
        assert!(KeySet::parse_compact("root:k").is_err());
        assert!(KeySet::parse_compact("admin:").is_err());
        assert!(KeySet::parse_compact("admin:k:s:x").is_err());
        assert_eq!(KeySet::parse_compact(" , ").unwrap_err(), KeyError::Empty);
        assert_eq!(format!("{keys:?}"), "KeySet(2 keys)");
    }

    #[test]
    fn compact_key_role_error_names_every_role_including_approver() {
        let error = KeySet::parse_compact("admin:k1, root:k2").unwrap_err();
        assert_eq!(error.to_string(), "key entry 2: must start with `admin:`, `writer:`, `reader:` or `approver:`");
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
    }

    #[test]
    fn approver_reads_and_approves_and_only_admin_includes_it() {
        let keys = KeySet::parse_compact("approver:k1").unwrap();
        assert_eq!(keys.authenticate("k1").unwrap().role, Role::Approver);
        assert_eq!(
            KeySet::parse_file("- {key: k, role: approver}").unwrap().authenticate("k").unwrap().role,
            Role::Approver
        );
        let includes =
            |role: Role| [Role::Reader, Role::Writer, Role::Approver, Role::Admin].map(|needed| role.includes(needed));
        assert_eq!(includes(Role::Reader), [true, false, false, false]);
        assert_eq!(includes(Role::Writer), [true, true, false, false]);
        assert_eq!(includes(Role::Approver), [true, false, true, false]);
        assert_eq!(includes(Role::Admin), [true, true, true, true]);
    }

    /// The console's change controls once restated the router's role rules; both now ask
    /// `Access::admits`, which must refuse by role first, then by store, as `admit` answers.
    #[test]
    fn access_admits_by_role_then_by_store() {
        let principal = |role, stores: Option<&[&str]>| Principal {
            name: None,
            role,
            stores: stores.map(|stores| stores.iter().map(|s| s.to_string()).collect()),
            key_id: String::new(),
        };
        let writer_on_a = principal(Role::Writer, Some(&["A"]));
        let write = Access::writer(Scope::PathStore);
        assert_eq!(write.admits(&writer_on_a, Some("A")), Ok(()));
        assert_eq!(write.admits(&writer_on_a, Some("B")), Err(Refused::Store));
        assert_eq!(Access::admin(Scope::PathStore).admits(&writer_on_a, Some("A")), Err(Refused::Role(Role::Admin)));
        assert_eq!(
            Access::approver(Scope::PathStore).admits(&writer_on_a, Some("B")),
            Err(Refused::Role(Role::Approver))
        );
        assert_eq!(Access::reader(Scope::AnyStore).admits(&writer_on_a, None), Ok(()));
        assert_eq!(Access::reader(Scope::Global).admits(&writer_on_a, None), Err(Refused::Store));
        assert_eq!(Access::admin(Scope::Global).admits(&principal(Role::Admin, None), None), Ok(()));
        assert_eq!(Access::Open.admits(&principal(Role::Reader, Some(&[])), Some("A")), Ok(()));
    }
}
