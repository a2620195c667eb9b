//! Server configuration in two stages: [`Args`] mirrors the `writ serve` flags and their `WRIT_*`
//! environment variables as given; [`Config::from_args`] checks them and returns typed settings.
//!
//! Invariant: a [`Config`] is always valid (limits are positive, the address parses); `main` is
//! the only caller and the only reader of env and args.
//! Must not import `store`, `index` or `eval`.

use crate::api::serve::TlsFiles;
use crate::api::{ApiOptions, Auth, KeySet, RouterConfig};
use crate::engine::EngineConfig;
use crate::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `writ serve` flags, each also readable from a `WRIT_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "WRIT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory of the on-disk (sled) store.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart).
    #[arg(long, env = "WRIT_MEMORY")]
    pub memory: bool,
    /// Most nested dispatches in one evaluation.
    #[arg(long, env = "WRIT_MAX_DEPTH", default_value_t = 25)]
    pub max_depth: u32,
    /// Most tuples (writes plus deletes) in one write request.
    #[arg(long, env = "WRIT_MAX_TUPLES_PER_WRITE", default_value_t = 1000)]
    pub max_tuples_per_write: usize,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "WRIT_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most checks in one batch-check request.
    #[arg(long, env = "WRIT_MAX_BATCH_CHECK", default_value_t = 50)]
    pub max_batch_check: usize,
    /// Authentication: `none` (local use only) or `preshared` (`Authorization: Bearer <key>`).
    #[arg(long, env = "WRIT_AUTH", default_value = "none")]
    pub auth: String,
    /// Key file for `--auth preshared` (YAML or JSON; see the README).
    #[arg(long, env = "WRIT_KEYS")]
    pub keys: Option<PathBuf>,
    /// Keys in compact form `role:key[:store+store],...`; best given through the environment.
    #[arg(long, env = "WRIT_PRESHARED_KEYS", hide_env_values = true)]
    pub preshared_keys: Option<Secret>,
    /// Longest a read waits for the store to reach its `at_least_revision`, in milliseconds.
    #[arg(long, env = "WRIT_REVISION_WAIT_MS", default_value_t = 1000)]
    pub revision_wait_ms: u64,
    /// The store the root AuthZEN routes (`/access/v1/...`) answer for.
    #[arg(long, env = "WRIT_AUTHZEN_STORE")]
    pub authzen_store: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (needs `--tls-key`).
    #[arg(long, env = "WRIT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "WRIT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// A flag value that must never be printed: `Debug` shows only that it is set.
#[derive(Clone)]
pub struct Secret(String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Checked server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The sled directory; `None` runs in memory.
    pub data_dir: Option<PathBuf>,
    /// Engine settings.
    pub engine: EngineConfig,
    /// HTTP limits.
    pub api: ApiOptions,
    /// Authentication: none, or the accepted keys (`Debug` never shows them).
    pub auth: Auth,
    /// Longest a read waits for its `at_least_revision`.
    pub revision_wait: Duration,
    /// The store the root AuthZEN routes answer for.
    pub authzen_store: Option<String>,
    /// HTTPS certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// A flag value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--listen` is not `host:port`.
    #[error("`--listen` value `{0}` is not a socket address like `127.0.0.1:8080`")]
    Listen(String),
    /// A limit is zero.
    #[error("`--{0}` must be greater than 0")]
    ZeroLimit(&'static str),
    /// `--auth` names an unsupported mode.
    #[error("`--auth` value `{0}` is not supported (use `none` or `preshared`)")]
    Auth(String),
    /// `--auth preshared` without keys, or keys without `--auth preshared`.
    #[error("{0}")]
    Keys(String),
    /// Only one of `--tls-cert` and `--tls-key` is given.
    #[error("`--tls-cert` and `--tls-key` go together; `--{0}` is missing")]
    TlsPair(&'static str),
}

impl Config {
    /// Checks the raw flags.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let listen = args.listen.parse().map_err(|_| ConfigError::Listen(args.listen.clone()))?;
        for (name, value) in [
            ("max-depth", args.max_depth as usize),
            ("max-tuples-per-write", args.max_tuples_per_write),
            ("max-body-bytes", args.max_body_bytes),
            ("max-batch-check", args.max_batch_check),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        let auth = match args.auth.as_str() {
            "none" if args.keys.is_some() || args.preshared_keys.is_some() => {
                return Err(ConfigError::Keys("keys are given but `--auth` is `none`; add `--auth preshared`".into()))
            }
            "none" => Auth::None,
            "preshared" => Auth::Preshared(std::sync::Arc::new(load_keys(&args)?)),
            other => return Err(ConfigError::Auth(other.to_string())),
        };
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsPair("tls-key")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("tls-cert")),
        };
        Ok(Config {
            listen,
            data_dir: if args.memory { None } else { Some(args.data_dir) },
            engine: EngineConfig {
                limits: Limits { max_depth: args.max_depth },
                max_tuples_per_write: args.max_tuples_per_write,
            },
            api: ApiOptions { max_body_bytes: args.max_body_bytes, max_batch_check: args.max_batch_check },
            auth,
            revision_wait: Duration::from_millis(args.revision_wait_ms),
            authzen_store: args.authzen_store.filter(|id| !id.is_empty()),
            tls,
        })
    }

    /// The HTTP router's settings.
    pub fn router_config(&self) -> RouterConfig {
        RouterConfig {
            options: self.api,
            revision_wait: self.revision_wait,
            authzen_store: self.authzen_store.clone(),
            auth: self.auth.clone(),
        }
    }
}

/// The keys of `--keys FILE` and `WRIT_PRESHARED_KEYS`, together.
fn load_keys(args: &Args) -> Result<KeySet, ConfigError> {
    let mut keys = KeySet::default();
    if let Some(path) = &args.keys {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Keys(format!("cannot read `--keys` file `{}`: {e}", path.display())))?;
        let file_keys = KeySet::parse_file(&text)
            .map_err(|e| ConfigError::Keys(format!("`--keys` file `{}`: {e}", path.display())))?;
        keys.merge(file_keys).map_err(|e| ConfigError::Keys(e.to_string()))?;
    }
    if let Some(Secret(text)) = &args.preshared_keys {
        let compact =
            KeySet::parse_compact(text).map_err(|e| ConfigError::Keys(format!("`WRIT_PRESHARED_KEYS`: {e}")))?;
        keys.merge(compact).map_err(|e| ConfigError::Keys(format!("`WRIT_PRESHARED_KEYS`: {e}")))?;
    }
    if keys.is_empty() {
        return Err(ConfigError::Keys("`--auth preshared` needs `--keys FILE` or `WRIT_PRESHARED_KEYS`".into()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(std::iter::once("writ").chain(flags.iter().copied())).unwrap();
        Config::from_args(cli.args)
    }

    #[test]
    fn defaults_are_valid_and_bad_flags_are_named() {
        assert!(matches!(parse(&[]).unwrap().auth, Auth::None));
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.api.max_batch_check, 50);
        assert!(parse(&["--memory"]).unwrap().data_dir.is_none());
        assert_eq!(parse(&["--listen", "nope"]).unwrap_err(), ConfigError::Listen("nope".into()));
        assert_eq!(parse(&["--max-batch-check", "0"]).unwrap_err(), ConfigError::ZeroLimit("max-batch-check"));
        assert_eq!(parse(&["--auth", "basic"]).unwrap_err(), ConfigError::Auth("basic".into()));
        assert!(matches!(parse(&["--auth", "preshared"]).unwrap_err(), ConfigError::Keys(_)));
        assert!(matches!(parse(&["--preshared-keys", "admin:k"]).unwrap_err(), ConfigError::Keys(_)));
        let config = parse(&["--auth", "preshared", "--preshared-keys", "admin:very-secret-key"]).unwrap();
        assert!(matches!(&config.auth, Auth::Preshared(keys) if keys.len() == 1));
        assert!(!format!("{config:?}").contains("very-secret-key"), "Debug never shows a key");
        let cli = Cli::try_parse_from(["writ", "--preshared-keys", "admin:very-secret-key"]).unwrap();
        assert!(!format!("{:?}", cli.args).contains("very-secret-key"));
        let missing = parse(&["--auth", "preshared", "--keys", "/nonexistent/keys.yaml"]).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/keys.yaml"), "{missing}");
        assert_eq!(config.revision_wait, Duration::from_millis(1000));
        let router = parse(&["--revision-wait-ms", "5", "--authzen-store", "01S"]).unwrap().router_config();
        assert_eq!((router.revision_wait, router.authzen_store.as_deref()), (Duration::from_millis(5), Some("01S")));
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        assert_eq!(parse(&[]).unwrap().tls, None);
        let both = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap().tls.unwrap();
        assert_eq!((both.cert, both.key), (PathBuf::from("c.pem"), PathBuf::from("k.pem")));
        assert_eq!(parse(&["--tls-cert", "c.pem"]).unwrap_err(), ConfigError::TlsPair("tls-key"));
        assert_eq!(parse(&["--tls-key", "k.pem"]).unwrap_err(), ConfigError::TlsPair("tls-cert"));
    }
}
