//! Bearer tokens: a JWT verified against the issuer's key set, and the principal chain it carries.
//!
//! [`Verifier::verify`] checks, in order: the header's algorithm against an allow-list (RS256,
//! ES256, EdDSA; never `none`, never HMAC, whatever key matches), the key by `kid`, the signature
//! (by `jsonwebtoken`), `exp`/`nbf` with a leeway, `iss` exactly, then the identity claims; the
//! audience (RFC 8707: this server's resource URI, exactly) is checked on every call, cached or not.
//! The chain is DESIGN §8's: `user:{sub}`, then every RFC 8693 actor from the innermost `act` out
//! to the top-level one; without `act`, `[user:{sub}, agent:{client_id or azp}]`; when `sub` is the
//! `client_id`, the first principal is `agent:{sub}`.
//!
//! Invariant: a token is accepted only if every check above passed at some `now` no later than
//! its `exp` plus the leeway; the cache never outlives a token's `exp` nor a key-set swap.
//! Pure given the keys and the clock (`now` is an argument): no I/O, no HTTP, no `engine`,
//! no `store`. Fetching the JWKS (and refreshing it on an unknown `kid`) belongs to the caller,
//! which hands the result to [`Verifier::replace_keys`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::id::id_problem;
use crate::tuple::ObjectRef;

/// The longest token, in bytes, worth decoding; real access tokens are a few kilobytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How deep `act` claims may nest: a chain longer than this is refused, not walked.
pub const MAX_ACTOR_DEPTH: usize = 16;

/// Base64url as JWKs and JWS use it; padding is tolerated in key material, which some issuers add.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signature algorithm the gateway can be told to accept. HMAC and `none` are not in this
/// type at all, so no configuration can allow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over an RSA key (the default).
    Rs256,
    /// ECDSA over P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlgorithm {
    /// Every algorithm the gateway supports, in the order they are named in errors.
    pub const ALL: [SigningAlgorithm; 3] = [SigningAlgorithm::Rs256, SigningAlgorithm::Es256, SigningAlgorithm::EdDsa];

    /// The JOSE name (`RS256`, `ES256`, `EdDSA`).
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with JOSE name `name`, exactly as spelled there.
    pub fn from_name(name: &str) -> Option<SigningAlgorithm> {
        SigningAlgorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    fn family(self) -> KeyFamily {
        match self {
            SigningAlgorithm::Rs256 => KeyFamily::Rsa,
            SigningAlgorithm::Es256 => KeyFamily::P256,
            SigningAlgorithm::EdDsa => KeyFamily::Ed25519,
        }
    }

    fn jose(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
            SigningAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of public key, which fixes the one algorithm it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    P256,
    Ed25519,
}

/// One public key of a [`KeySet`].
struct PublicKey {
    kid: Option<String>,
    family: KeyFamily,
    /// The JWK's own `alg`, when it names one; a token must then use exactly it.
    algorithm: Option<SigningAlgorithm>,
    decoding: DecodingKey,
}

/// The issuer's signing keys, read from a JWKS document (RFC 7517). Immutable: a refreshed JWKS
/// is a new `KeySet`, swapped into the [`Verifier`] whole.
pub struct KeySet {
    keys: Vec<PublicKey>,
}

/// Why a JWKS document could not become a [`KeySet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// The document is not JSON, or not an object with a `keys` array.
    #[error("jwks is not a JSON object with a `keys` array: {0}")]
    Shape(String),
    /// A key of a supported kind has bad or missing members.
    #[error("jwks key {index}: {reason}")]
    Key {
        /// The key's position in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Two keys share a `kid`, so a token naming it would be ambiguous.
    #[error("jwks has two keys with kid `{0}`")]
    DuplicateKid(String),
    /// No key is an RSA, P-256 or Ed25519 signing key.
    #[error("jwks has no RSA, P-256 or Ed25519 signing key")]
    NoUsableKey,
}

impl KeySet {
    /// Reads a JWKS document (a file's text or a fetched body). Keys that are not for signing
    /// (`use` other than `sig`), of another kind (`oct`, other curves) or for another algorithm are
    /// skipped: HMAC keys in particular never become verification keys.
    pub fn from_jwks(document: &[u8]) -> Result<KeySet, KeySetError> {
        let value: Value = serde_json::from_slice(document).map_err(|e| KeySetError::Shape(e.to_string()))?;
        let Some(entries) = value.get("keys").and_then(Value::as_array) else {
            return Err(KeySetError::Shape("no `keys` array".into()));
        };
        let mut keys: Vec<PublicKey> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let Some(key) = read_jwk(entry).map_err(|reason| KeySetError::Key { index, reason })? else {
                continue;
            };
            if let Some(kid) = &key.kid {
                if keys.iter().any(|k| k.kid.as_deref() == Some(kid.as_str())) {
                    return Err(KeySetError::DuplicateKid(kid.clone()));
                }
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    /// How many signing keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set holds no key (never, for a set read by [`KeySet::from_jwks`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token names; a token without `kid` is accepted only against a one-key set.
    fn find(&self, kid: Option<&str>) -> Option<&PublicKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

fn string_member<'v>(jwk: &'v Value, name: &str) -> Result<&'v str, String> {
    match jwk.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{name}` is not a string")),
        None => Err(format!("`{name}` is missing")),
    }
}

fn decoded_member(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    BASE64URL.decode(string_member(jwk, name)?).map_err(|_| format!("`{name}` is not base64url"))
}

/// One JWK as a verification key, `Ok(None)` when it is of a kind the gateway does not verify with.
fn read_jwk(jwk: &Value) -> Result<Option<PublicKey>, String> {
    if !jwk.is_object() {
        return Err("is not an object".into());
    }
    if jwk.get("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("`kid` is not a string".into()),
    };
    let family = match (string_member(jwk, "kty")?, jwk.get("crv").and_then(Value::as_str)) {
        ("RSA", _) => KeyFamily::Rsa,
        ("EC", Some("P-256")) => KeyFamily::P256,
        ("OKP", Some("Ed25519")) => KeyFamily::Ed25519,
        _ => return Ok(None),
    };
    let algorithm = match jwk.get("alg") {
        None => None,
        Some(Value::String(name)) => match SigningAlgorithm::from_name(name) {
            Some(alg) if alg.family() == family => Some(alg),
            // A key published for RS384, PS256, HS256...: not one this gateway verifies with.
            _ => return Ok(None),
        },
        Some(_) => return Err("`alg` is not a string".into()),
    };
    let decoding = match family {
        KeyFamily::Rsa => {
            let modulus = decoded_member(jwk, "n")?;
            let exponent = decoded_member(jwk, "e")?;
            let bits = modulus.iter().skip_while(|&&b| b == 0).count() * 8;
            if bits < 2048 {
                return Err("RSA modulus is shorter than 2048 bits".into());
            }
            if exponent.is_empty() || exponent.len() > 8 {
                return Err("RSA exponent `e` has a bad length".into());
            }
            DecodingKey::from_rsa_raw_components(&modulus, &exponent)
        }
        KeyFamily::P256 => {
            let (x, y) = (decoded_member(jwk, "x")?, decoded_member(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates `x` and `y` must be 32 bytes each".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            DecodingKey::from_ec_der(&point)
        }
        KeyFamily::Ed25519 => {
            let x = decoded_member(jwk, "x")?;
            // `jsonwebtoken` slices the first 32 bytes; a shorter key must never reach it.
            if x.len() != 32 {
                return Err("Ed25519 key `x` must be 32 bytes".into());
            }
            DecodingKey::from_ed_der(&x)
        }
    };
    Ok(Some(PublicKey { kid, family, algorithm, decoding }))
}

/// Why a request's bearer token was refused. Every variant but [`TokenError::Missing`] is RFC 6750's
/// `invalid_token`; the HTTP layer answers each with 401 and `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` credential at all.
    #[error("no bearer token")]
    Missing,
    /// Not a JWS compact serialization, or a header or claim set that is not JSON as required.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify with the chosen key.
    #[error("token signature does not verify")]
    BadSignature,
    /// `exp` plus the leeway is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` minus the leeway is in the future.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `aud` does not hold this server's resource URI.
    #[error("token audience does not include `{expected}`")]
    WrongAudience {
        /// This server's resource URI.
        expected: String,
    },
    /// `iss` is not the configured issuer.
    #[error("token issuer is not `{expected}`")]
    WrongIssuer {
        /// The configured issuer.
        expected: String,
    },
    /// The header's `alg` is not on the allow-list, or not the one its key is for.
    #[error("token algorithm `{0}` is not allowed")]
    DisallowedAlgorithm(String),
    /// No key in the set has the token's `kid` (the caller may refresh the JWKS and retry).
    #[error("no key for token kid `{}`", .kid.as_deref().unwrap_or("(none)"))]
    UnknownKey {
        /// The header's `kid`, if it had one.
        kid: Option<String>,
    },
    /// A claim needed for the principal chain is missing or cannot be a Writ object id.
    #[error("token claim `{claim}` {reason}")]
    InvalidClaim {
        /// The claim's path, e.g. `sub`, `client_id` or `act.act.sub`.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl TokenError {
    /// The RFC 6750 `error` attribute for `WWW-Authenticate`: none when no token was sent.
    pub fn bearer_error_code(&self) -> Option<&'static str> {
        match self {
            TokenError::Missing => None,
            _ => Some("invalid_token"),
        }
    }
}

/// Text from a token, cut short so an error message never carries a large hostile string.
fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The token in an `Authorization` header value (`Bearer <token>`, scheme case-insensitive).
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, TokenError> {
    let Some(value) = authorization else {
        return Err(TokenError::Missing);
    };
    let value = value.trim();
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(TokenError::Malformed("authorization is not `Bearer <token>`".into()));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Malformed("authorization scheme is not `Bearer`".into()));
    }
    let token = token.trim_start();
    // RFC 6750 b64token: letters, digits and `-._~+/`, then `=` padding.
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if token.is_empty() || !token.chars().all(b64token) {
        return Err(TokenError::Malformed("bearer token has characters outside RFC 6750 b64token".into()));
    }
    Ok(token)
}

/// What the [`Verifier`] accepts, and how it names the principals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// The one accepted `iss`, compared exactly.
    pub issuer: String,
    /// The accepted header algorithms (default: RS256 only).
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (default 60).
    pub leeway_seconds: u64,
    /// The type of the human principal (default `user`).
    pub user_type: String,
    /// The type of agent principals (default `agent`).
    pub agent_type: String,
    /// How many verified tokens the cache holds at most (default 10 000).
    pub cache_capacity: usize,
}

impl VerifierSettings {
    /// The defaults of DESIGN §8 for tokens from `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        VerifierSettings {
            issuer: issuer.into(),
            algorithms: vec![SigningAlgorithm::Rs256],
            leeway_seconds: 60,
            user_type: "user".into(),
            agent_type: "agent".into(),
            cache_capacity: 10_000,
        }
    }
}

/// A token that passed verification: who it speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The principal chain, human (or self-acting agent) first, current actor last.
    pub chain: Vec<ObjectRef>,
    /// The audiences the token was issued for.
    pub audiences: Vec<String>,
    /// `exp`, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Verifies bearer JWTs against a swappable [`KeySet`], caching each verified token by the
/// SHA-256 of its text until it expires.
pub struct Verifier {
    settings: VerifierSettings,
    keys: ArcSwap<KeySet>,
    cache: Mutex<HashMap<[u8; 32], Arc<VerifiedToken>>>,
}

impl Verifier {
    /// A verifier of tokens signed by a key in `keys`.
    pub fn new(settings: VerifierSettings, keys: KeySet) -> Self {
        Verifier { settings, keys: ArcSwap::from_pointee(keys), cache: Mutex::new(HashMap::new()) }
    }

    /// The settings this verifier was built with.
    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// Swaps in a refreshed key set. The cache is emptied: a token signed by a key the issuer has
    /// withdrawn must not stay accepted until it expires.
    pub fn replace_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
        self.cache.lock().clear();
    }

    /// How many verified tokens the cache holds now.
    pub fn cached_tokens(&self) -> usize {
        self.cache.lock().len()
    }

    /// Verifies `token` for the resource `audience` at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, audience: &str, now: u64) -> Result<Arc<VerifiedToken>, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed(format!("token is longer than {MAX_TOKEN_BYTES} bytes")));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.cache.lock().get(&digest).cloned();
        let verified = match cached {
            Some(verified) if self.expired(verified.expires_at, now) => {
                self.cache.lock().remove(&digest);
                return Err(TokenError::Expired);
            }
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify_uncached(token, now)?);
                self.remember(digest, Arc::clone(&verified), now);
                verified
            }
        };
        if !verified.audiences.iter().any(|a| a == audience) {
            return Err(TokenError::WrongAudience { expected: audience.to_string() });
        }
        Ok(verified)
    }

    fn expired(&self, expires_at: u64, now: u64) -> bool {
        expires_at.saturating_add(self.settings.leeway_seconds) < now
    }

    /// Adds a verified token to the cache, first dropping expired entries when it is full, then
    /// (only if still full) an arbitrary one: the bound matters more than which entry goes.
    fn remember(&self, digest: [u8; 32], verified: Arc<VerifiedToken>, now: u64) {
        let capacity = self.settings.cache_capacity;
        if capacity == 0 {
            return;
        }
        let mut cache = self.cache.lock();
        if cache.len() >= capacity {
            cache.retain(|_, entry| !self.expired(entry.expires_at, now));
        }
        if cache.len() >= capacity {
            if let Some(victim) = cache.keys().next().copied() {
                cache.remove(&victim);
            }
        }
        cache.insert(digest, verified);
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<VerifiedToken, TokenError> {
        let header = read_header(token)?;
        let Some(algorithm) = SigningAlgorithm::from_name(&header.alg).filter(|a| self.settings.algorithms.contains(a))
        else {
            return Err(TokenError::DisallowedAlgorithm(shown(&header.alg)));
        };
        let keys = self.keys.load();
        let Some(key) = keys.find(header.kid.as_deref()) else {
            return Err(TokenError::UnknownKey { kid: header.kid.as_deref().map(shown) });
        };
        if key.family != algorithm.family() || key.algorithm.is_some_and(|a| a != algorithm) {
            return Err(TokenError::DisallowedAlgorithm(shown(&header.alg)));
        }
        let claims = verify_signature(token, &key.decoding, algorithm)?;
        let expires_at = match claims.get("exp") {
            Some(exp) => numeric_date(exp).ok_or_else(|| invalid("exp", "is not a NumericDate"))?,
            None => return Err(invalid("exp", "is missing")),
        };
        if self.expired(expires_at, now) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let not_before = numeric_date(nbf).ok_or_else(|| invalid("nbf", "is not a NumericDate"))?;
            if not_before > now.saturating_add(self.settings.leeway_seconds) {
                return Err(TokenError::NotYetValid);
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(TokenError::WrongIssuer { expected: self.settings.issuer.clone() });
        }
        let audiences = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let chain = principal_chain(&claims, &self.settings.user_type, &self.settings.agent_type)?;
        Ok(VerifiedToken { chain, audiences, expires_at })
    }
}

/// The two header members the verifier reads before choosing a key.
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Reads the JOSE header by hand, so that `alg: none` or `HS256` is refused by name rather than
/// failing somewhere inside the JWT crate.
fn read_header(token: &str) -> Result<Header, TokenError> {
    let mut parts = token.split('.');
    let (Some(encoded), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("a JWT has three dot-separated parts".into()));
    };
    let bytes = BASE64URL.decode(encoded).map_err(|_| TokenError::Malformed("header is not base64url".into()))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("header is not a JSON object".into()))?;
    let Some(Value::String(alg)) = header.get("alg") else {
        return Err(TokenError::Malformed("header has no `alg` string".into()));
    };
    // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand.
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("header `crit` extensions are not supported".into()));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::Malformed("header `kid` is not a string".into())),
    };
    Ok(Header { alg: alg.clone(), kid })
}

/// Checks the signature with `jsonwebtoken` and returns the claim set. Its own claim checks are
/// off: this module checks `exp`, `nbf`, `iss` and `aud` itself, against the `now` it is given.
fn verify_signature(
    token: &str,
    key: &DecodingKey,
    algorithm: SigningAlgorithm,
) -> Result<Map<String, Value>, TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = Validation::new(algorithm.jose());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::DisallowedAlgorithm(algorithm.name().into()),
            ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
                TokenError::Malformed("payload or signature is not valid base64url JSON".into())
            }
            _ => TokenError::Malformed(error.to_string()),
        }),
    }
}

/// A JWT NumericDate: seconds since the epoch, an integer or a non-negative finite number.
fn numeric_date(value: &Value) -> Option<u64> {
    match value.as_u64() {
        Some(seconds) => Some(seconds),
        None => value.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64).map(|f| f as u64),
    }
}

fn invalid(claim: &str, reason: &str) -> TokenError {
    TokenError::InvalidClaim { claim: claim.to_string(), reason: reason.to_string() }
}

/// The string claim at `path` in `object`, checked as a Writ object id.
fn id_claim<'c>(object: &'c Map<String, Value>, name: &str, path: &str) -> Result<Option<&'c str>, TokenError> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(id)) => match id_problem(id) {
            None => Ok(Some(id)),
            Some(problem) => Err(invalid(path, problem)),
        },
        Some(_) => Err(invalid(path, "is not a string")),
    }
}

/// The principal chain of a verified claim set (DESIGN §8), human first, current actor last.
pub fn principal_chain(
    claims: &Map<String, Value>,
    user_type: &str,
    agent_type: &str,
) -> Result<Vec<ObjectRef>, TokenError> {
    let subject = id_claim(claims, "sub", "sub")?.ok_or_else(|| invalid("sub", "is missing"))?;
    // RFC 9068 names the client `client_id`; OpenID Connect's `azp` stands in when it is absent.
    let client = match claims.get("client_id") {
        Some(_) => id_claim(claims, "client_id", "client_id")?,
        None => id_claim(claims, "azp", "azp")?,
    };
    let mut actors = Vec::new();
    let mut path = String::from("act");
    let mut next = claims.get("act");
    while let Some(actor) = next {
        if actors.len() == MAX_ACTOR_DEPTH {
            return Err(invalid(&path, "nests deeper than 16 actors"));
        }
        let Value::Object(actor) = actor else {
            return Err(invalid(&path, "is not an object"));
        };
        let sub_path = format!("{path}.sub");
        let actor_id = id_claim(actor, "sub", &sub_path)?.ok_or_else(|| invalid(&sub_path, "is missing"))?;
        actors.push(actor_id);
        next = actor.get("act");
        path.push_str(".act");
    }
    // The top-level `act` is the current actor; the chain runs from the earliest one.
    actors.reverse();
    let acting_for_itself = client == Some(subject);
    let first = if acting_for_itself { agent_type } else { user_type };
    let mut chain = vec![ObjectRef::new(first, subject)];
    if actors.is_empty() {
        if !acting_for_itself {
            let client = client.ok_or_else(|| invalid("client_id", "is missing (and so is `azp`)"))?;
            chain.push(ObjectRef::new(agent_type, client));
        }
    } else {
        chain.extend(actors.into_iter().map(|actor| ObjectRef::new(agent_type, actor)));
    }
    Ok(chain)
}

#[cfg(test)]
mod tests;
