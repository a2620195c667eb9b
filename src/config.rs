//! Server configuration in two stages: [`Args`] mirrors the `writ serve` flags and their `WRIT_*`
//! environment variables as given; [`Config::from_args`] checks them and returns typed settings.
//!
//! Invariant: a [`Config`] is always valid (limits are positive, the address parses); `main` is
//! the only caller and the only reader of env and args.
//! Must not import `store`, `index` or `eval`.

use crate::api::ApiOptions;
use crate::engine::EngineConfig;
use crate::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Most candidate ids in one `writ/filter` request (and objects in one audience check).
    #[arg(long, env = "WRIT_MAX_FILTER_IDS", default_value_t = 10_000)]
    pub max_filter_ids: usize,
    /// Most principals in one OBO chain (and members in one audience).
    #[arg(long, env = "WRIT_MAX_PRINCIPALS", default_value_t = 100)]
    pub max_principals: usize,
    /// Authentication mode; only `none` for now.
    #[arg(long, env = "WRIT_AUTH", default_value = "none")]
    pub auth: String,
}

/// How callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Nobody is authenticated; every caller may do everything.
    None,
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
    /// Authentication mode.
    pub auth: AuthMode,
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
    #[error("`--auth` value `{0}` is not supported (only `none`)")]
    Auth(String),
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
            ("max-filter-ids", args.max_filter_ids),
            ("max-principals", args.max_principals),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        let auth = match args.auth.as_str() {
            "none" => AuthMode::None,
            other => return Err(ConfigError::Auth(other.to_string())),
        };
        Ok(Config {
            listen,
            data_dir: if args.memory { None } else { Some(args.data_dir) },
            engine: EngineConfig {
                limits: Limits { max_depth: args.max_depth },
                max_tuples_per_write: args.max_tuples_per_write,
            },
            api: ApiOptions {
                max_body_bytes: args.max_body_bytes,
                max_batch_check: args.max_batch_check,
                max_filter_ids: args.max_filter_ids,
                max_principals: args.max_principals,
            },
            auth,
        })
    }
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
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.api.max_batch_check, 50);
        assert!(parse(&["--memory"]).unwrap().data_dir.is_none());
        assert_eq!(parse(&["--listen", "nope"]).unwrap_err(), ConfigError::Listen("nope".into()));
        assert_eq!(parse(&["--max-batch-check", "0"]).unwrap_err(), ConfigError::ZeroLimit("max-batch-check"));
        assert_eq!(parse(&["--auth", "preshared"]).unwrap_err(), ConfigError::Auth("preshared".into()));
    }
}
