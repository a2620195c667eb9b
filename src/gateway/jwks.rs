//! The issuer's keys at run time: the JWKS read from `jwks_file` or fetched from `jwks_url` at
//! start, refetched when a token names an unknown `kid` (at most once per [`MIN_REFETCH_INTERVAL`])
//! and when older than [`KEYS_TTL`], and swapped into the [`Verifier`] whole.
//!
//! Invariant: a key set is replaced only by one that parsed; a failed refetch keeps the old keys
//! (logged), so an issuer outage never empties the set, and a flood of tokens with made-up `kid`s
//! costs at most one fetch per interval. Verification itself stays the pure `token` module's.
//! Does I/O (file, HTTP); must not import `store` or `api`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::config::JwksSource;
use super::token::{KeySet, KeySetError, TokenError, VerifiedToken, Verifier, VerifierSettings};

/// A key set older than this is refetched before the next token is verified.
pub const KEYS_TTL: Duration = Duration::from_secs(300);

/// The shortest time between two refetches caused by unknown `kid`s.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The largest JWKS document accepted: real ones are a few kilobytes.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why the issuer's keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// `jwks_file` cannot be read.
    #[error("cannot read jwks_file `{path}`: {message}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// `jwks_url` cannot be fetched (refused, timed out, not 200, too large).
    #[error("cannot fetch jwks_url `{url}`: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The document is not a usable JWKS.
    #[error("{0}")]
    Keys(#[from] KeySetError),
}

/// When the keys were last loaded, and when a refetch was last tried (`None`: never).
struct FetchTimes {
    loaded: Instant,
    attempted: Option<Instant>,
}

/// Why a refetch is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refetch {
    /// The keys are older than [`KEYS_TTL`].
    Stale,
    /// A token named a `kid` the set does not hold.
    UnknownKid,
}

/// A [`Verifier`] whose keys follow the issuer's JWKS.
pub struct IssuerKeys {
    verifier: Verifier,
    source: JwksSource,
    client: reqwest::Client,
    times: Mutex<FetchTimes>,
    /// Serializes refetches so concurrent misses cause one fetch, not one each.
    refetching: tokio::sync::Mutex<()>,
}

impl IssuerKeys {
    /// Loads the keys once (an error stops `writ serve`: a gateway that cannot verify tokens
    /// would refuse every call).
    pub async fn load(
        source: JwksSource,
        settings: VerifierSettings,
        client: reqwest::Client,
    ) -> Result<IssuerKeys, JwksError> {
        let keys = read_keys(&source, &client).await?;
        let now = Instant::now();
        Ok(IssuerKeys {
            verifier: Verifier::new(settings, keys),
            source,
            client,
            times: Mutex::new(FetchTimes { loaded: now, attempted: None }),
            refetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Verifies a bearer token for the resource `audience`, refetching the keys first when they
    /// are stale, and once more when the token names a `kid` the set does not hold.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Arc<VerifiedToken>, TokenError> {
        if self.times.lock().loaded.elapsed() >= KEYS_TTL {
            self.refetch(Refetch::Stale).await;
        }
        match self.verifier.verify(token, audience, unix_now()) {
            Err(TokenError::UnknownKey { .. }) if self.refetch(Refetch::UnknownKid).await => {
                self.verifier.verify(token, audience, unix_now())
            }
            other => other,
        }
    }

    /// Refetches unless one was tried within [`MIN_REFETCH_INTERVAL`] (or, for stale keys, the
    /// keys are fresh again); true when new keys were swapped in.
    async fn refetch(&self, reason: Refetch) -> bool {
        let _one_at_a_time = self.refetching.lock().await;
        {
            let mut times = self.times.lock();
            // A refetch that finished while this one waited for the lock counts too.
            let recently_tried = times.attempted.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL);
            let fresh = reason == Refetch::Stale && times.loaded.elapsed() < KEYS_TTL;
            if recently_tried || fresh {
                return false;
            }
            times.attempted = Some(Instant::now());
        }
        match read_keys(&self.source, &self.client).await {
            Ok(keys) => {
                self.verifier.replace_keys(keys);
                self.times.lock().loaded = Instant::now();
                tracing::info!("gateway: issuer keys refreshed");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "gateway: issuer keys not refreshed; keeping the previous ones");
                false
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

async fn read_keys(source: &JwksSource, client: &reqwest::Client) -> Result<KeySet, JwksError> {
    let document = match source {
        JwksSource::File(path) => tokio::fs::read(path)
            .await
            .map_err(|e| JwksError::File { path: path.display().to_string(), message: e.to_string() })?,
        JwksSource::Url(url) => {
            let failed = |message: String| JwksError::Fetch { url: url.clone(), message };
            let response = client.get(url).send().await.map_err(|e| failed(e.to_string()))?;
            if !response.status().is_success() {
                return Err(failed(format!("status {}", response.status())));
            }
            if response.content_length().is_some_and(|length| length > MAX_JWKS_BYTES as u64) {
                return Err(failed(format!("larger than {MAX_JWKS_BYTES} bytes")));
            }
            let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
            if body.len() > MAX_JWKS_BYTES {
                return Err(failed(format!("larger than {MAX_JWKS_BYTES} bytes")));
            }
            body.to_vec()
        }
    };
    Ok(KeySet::from_jwks(&document)?)
}
