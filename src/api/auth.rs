//! Pre-shared-key authentication and role-based access: the [`Auth`] setting, the [`KeySet`] it
//! checks `Authorization: Bearer <key>` against, and the axum middleware that admits or refuses
//! each request by its method and path.
//!
//! Roles, each including the ones below it: `admin` (create and delete stores, write models and
//! assertions), `writer` (write and delete tuples), `reader` (every read: check, batch-check,
//! expand, list objects and users, read, changes, AuthZEN, Writ's read-only agent routes, and
//! every `GET`). A key may be limited to a list of stores: elsewhere it gets 403, `GET /stores`
//! lists only its stores, and calls that are not about one store (`POST /stores`, `/metrics`)
//! need an unlimited key.
//!
//! Invariants: keys are held only as SHA-256 digests and compared in constant time; no key, and no
//! digest of one, is ever logged or printed by `Debug`. A route the rules do not know needs an
//! unlimited `admin` key (fail closed); `/healthz`, `/readyz` and the root AuthZEN discovery
//! document are open. Missing key → 401 `bearer_token_missing`; unknown key → 401
//! `unauthenticated`; wrong role or store → 403 `forbidden` (OpenFGA's codes).
//! Must not import `store`, `index` or `eval`.

use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a key may do; each role includes the ones ordered below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only.
    Reader,
    /// Reads and tuple writes.
    Writer,
    /// Everything, including stores and models.
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
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
            let role = match parts.next() {
                Some("admin") => Role::Admin,
                Some("writer") => Role::Writer,
                Some("reader") => Role::Reader,
                _ => return Err(bad("must start with `admin:`, `writer:` or `reader:`")),
            };
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

/// How callers are authenticated.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nobody is authenticated; every caller may do everything.
    #[default]
    None,
    /// `Authorization: Bearer <key>` with one of these keys.
    Preshared(Arc<KeySet>),
}

/// What a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// No key.
    Open,
    /// A key with at least this role, allowed on this scope.
    Key(Role, Scope),
}

/// Which stores a route touches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// One store.
    Store(String),
    /// No particular store; a store-limited key may call it (the handler narrows the answer).
    Any,
    /// Every store, or none yet (creating one): only a key without a store list.
    Global,
}

/// The POST routes under `/stores/{id}/` that only read.
const READ_POSTS: [&str; 12] = [
    "check",
    "batch-check",
    "expand",
    "list-objects",
    "streamed-list-objects",
    "list-users",
    "read",
    "writ/obo-check",
    "writ/audience-check",
    "writ/filter",
    "writ/visibility",
    "writ/memberships",
];

/// Classifies a request by method and path alone, so routes added later are covered by rule.
fn requirement(method: &Method, path: &str, authzen_store: Option<&str>) -> Requirement {
    let is_get = method == Method::GET || method == Method::HEAD;
    match path {
        "/healthz" | "/readyz" | "/.well-known/authzen-configuration" => return Requirement::Open,
        "/metrics" => return Requirement::Key(Role::Reader, Scope::Global),
        "/stores" | "/stores/" => {
            return if is_get {
                Requirement::Key(Role::Reader, Scope::Any)
            } else {
                Requirement::Key(Role::Admin, Scope::Global)
            }
        }
        _ => {}
    }
    if let Some(store_id) = path.strip_prefix("/.well-known/authzen-configuration/stores/") {
        return Requirement::Key(Role::Reader, Scope::Store(store_id.trim_end_matches('/').to_string()));
    }
    if path.starts_with("/access/v1/") && method == Method::POST {
        let scope = authzen_store.map_or(Scope::Any, |id| Scope::Store(id.to_string()));
        return Requirement::Key(Role::Reader, scope);
    }
    let Some(rest) = path.strip_prefix("/stores/") else {
        // Unknown top-level routes: a GET reads (the 404 answers it), anything else fails closed.
        return if is_get {
            Requirement::Key(Role::Reader, Scope::Any)
        } else {
            Requirement::Key(Role::Admin, Scope::Global)
        };
    };
    let (store_id, route) = rest.split_once('/').unwrap_or((rest, ""));
    let scope = Scope::Store(store_id.to_string());
    let route = route.trim_end_matches('/');
    let reads = is_get || (method == Method::POST && (READ_POSTS.contains(&route) || route.starts_with("access/v1/")));
    let role = if reads {
        Role::Reader
    } else if method == Method::POST && route == "write" {
        Role::Writer
    } else {
        // Store deletion, models, assertions, and any write route not listed above.
        Role::Admin
    };
    Requirement::Key(role, scope)
}

/// The key in `Authorization: Bearer <key>` (scheme case-insensitive).
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim()).filter(|key| !key.is_empty())
}

/// The middleware: admits a request whose key fits its route, or answers 401/403.
pub(super) async fn authorize(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Auth::Preshared(keys) = &state.auth else { return next.run(request).await };
    let (role, scope) = match requirement(request.method(), request.uri().path(), state.authzen_store.as_deref()) {
        Requirement::Open => return next.run(request).await,
        Requirement::Key(role, scope) => (role, scope),
    };
    let Some(presented) = bearer(&request) else {
        return ApiError::Unauthenticated { code: "bearer_token_missing", message: "missing bearer token" }
            .into_response();
    };
    let Some(principal) = keys.authenticate(presented).cloned() else {
        tracing::info!("rejected an unknown key");
        return ApiError::Unauthenticated { code: "unauthenticated", message: "unauthenticated" }.into_response();
    };
    if principal.role < role {
        let message = format!(
            "the principal is not authorized to perform the action: `{} {}` needs the `{}` role, the key has `{}`",
            request.method(),
            request.uri().path(),
            role.name(),
            principal.role.name()
        );
        return ApiError::Forbidden(message).into_response();
    }
    let store_ok = match &scope {
        Scope::Store(store_id) => principal.allows_store(store_id),
        Scope::Any => true,
        Scope::Global => principal.stores.is_none(),
    };
    if !store_ok {
        let message = match &scope {
            Scope::Store(store_id) => {
                format!("the principal is not authorized to perform the action: the key is not allowed on store `{store_id}`")
            }
            _ => format!(
                "the principal is not authorized to perform the action: `{} {}` needs a key not limited to stores",
                request.method(),
                request.uri().path()
            ),
        };
        return ApiError::Forbidden(message).into_response();
    }
    if let Some(name) = &principal.name {
        tracing::debug!(key = %name, "authenticated");
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(method: Method, path: &str) -> Requirement {
        requirement(&method, path, Some("01Z"))
    }

    fn store(role: Role, id: &str) -> Requirement {
        Requirement::Key(role, Scope::Store(id.to_string()))
    }

    #[test]
    fn routes_are_classified_by_method_and_path() {
        assert_eq!(need(Method::GET, "/healthz"), Requirement::Open);
        assert_eq!(need(Method::GET, "/metrics"), Requirement::Key(Role::Reader, Scope::Global));
        assert_eq!(need(Method::GET, "/stores"), Requirement::Key(Role::Reader, Scope::Any));
        assert_eq!(need(Method::POST, "/stores"), Requirement::Key(Role::Admin, Scope::Global));
        assert_eq!(need(Method::DELETE, "/stores/01A"), store(Role::Admin, "01A"));
        assert_eq!(need(Method::GET, "/stores/01A"), store(Role::Reader, "01A"));
        assert_eq!(need(Method::POST, "/stores/01A/write"), store(Role::Writer, "01A"));
        assert_eq!(need(Method::POST, "/stores/01A/authorization-models"), store(Role::Admin, "01A"));
        assert_eq!(need(Method::PUT, "/stores/01A/writ/model"), store(Role::Admin, "01A"));
        assert_eq!(need(Method::PUT, "/stores/01A/assertions/01M"), store(Role::Admin, "01A"));
        for read in READ_POSTS {
            assert_eq!(need(Method::POST, &format!("/stores/01A/{read}")), store(Role::Reader, "01A"), "{read}");
        }
        assert_eq!(need(Method::POST, "/stores/01A/access/v1/evaluation"), store(Role::Reader, "01A"));
        assert_eq!(need(Method::GET, "/stores/01A/writ/decisions"), store(Role::Reader, "01A"));
        assert_eq!(need(Method::GET, "/stores/01A/changes"), store(Role::Reader, "01A"));
        assert_eq!(need(Method::POST, "/stores/01A/writ/something-new"), store(Role::Admin, "01A"));
        assert_eq!(need(Method::POST, "/access/v1/evaluations"), store(Role::Reader, "01Z"));
        assert_eq!(need(Method::POST, "/elsewhere"), Requirement::Key(Role::Admin, Scope::Global));
        assert_eq!(need(Method::GET, "/.well-known/authzen-configuration/stores/01A"), store(Role::Reader, "01A"));
    }

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
}
