//! Server configuration in two stages: [`Args`] mirrors the `writ serve` flags and their `WRIT_*`
//! environment variables as given; [`Config::from_args`] checks them and returns typed settings.
//!
//! Invariant: a [`Config`] is always valid (limits are positive, the address parses); `cli` is
//! the only caller and the only reader of env and args.
//! Must not import `store`, `index` or `eval`.

mod alerts;

use crate::api::serve::TlsFiles;
use crate::api::{ApiOptions, Auth, KeySet, RouterConfig, WebhookSettings};
use crate::engine::{AlertConfig, DecisionLogConfig, DecisionLogMode, EngineConfig, InputLimits};
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
    /// Keep everything in PostgreSQL instead of `--data-dir`: `postgres://user:password@host:port/db`.
    #[arg(long, env = "WRIT_DATASTORE", hide_env_values = true, conflicts_with = "memory")]
    pub datastore: Option<Secret>,
    /// Most nested dispatches in one evaluation.
    #[arg(long, env = "WRIT_MAX_DEPTH", default_value_t = 25)]
    pub max_depth: u32,
    /// Most tuples (writes plus deletes) in one write request.
    #[arg(long, env = "WRIT_MAX_TUPLES_PER_WRITE", default_value_t = 1000)]
    pub max_tuples_per_write: usize,
    /// Stores of at least this many tuples are checkpointed (packed into a few large rows that
    /// start-up reads instead of one row per tuple) after a slow start and when the server stops.
    #[arg(long, env = "WRIT_CHECKPOINT_MIN_TUPLES", default_value_t = 100_000)]
    pub checkpoint_min_tuples: usize,
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
    /// Which check-like decisions to record: `all`, `deny` or `off`.
    #[arg(long, env = "WRIT_DECISION_LOG", default_value = "deny")]
    pub decision_log: String,
    /// Most decision-log records kept per store.
    #[arg(long, env = "WRIT_DECISION_LOG_MAX_COUNT", default_value_t = 100_000)]
    pub decision_log_max_count: usize,
    /// Oldest decision-log record kept: a number with unit `ms`, `s`, `m`, `h` or `d` (`7d`).
    #[arg(long, env = "WRIT_DECISION_LOG_MAX_AGE", default_value = "7d")]
    pub decision_log_max_age: String,
    /// How often expired tuples are swept (deleted as a write); `0` never sweeps.
    #[arg(long, env = "WRIT_EXPIRY_SWEEP_INTERVAL", default_value = "60s")]
    pub expiry_sweep_interval: String,
    /// Serve HTTPS with this PEM certificate chain (needs `--tls-key`).
    #[arg(long, env = "WRIT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "WRIT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Log format: `text` for people (coloured only on a terminal), or `json` for machines (one
    /// object a line, with `timestamp`, `level`, `fields` and `target`). `RUST_LOG` sets the level.
    #[arg(long, env = "WRIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// MCP gateway config file (YAML, or JSON by a `.json` name): mounts `/mcp/{server}` for each
    /// configured server on this listener (see DESIGN §8).
    #[arg(long, env = "WRIT_GATEWAY")]
    pub gateway: Option<PathBuf>,
    /// Serve the admin console's pages under `/console/` (with `--auth none`, only on a loopback
    /// `--listen` address).
    #[arg(long, env = "WRIT_CONSOLE")]
    pub console: bool,
    /// Alert rules and thresholds (YAML or JSON; see the README's "Alerts"): starts the alerts
    /// computed from the decision stream.
    #[arg(long, env = "WRIT_ALERTS")]
    pub alerts: Option<PathBuf>,
    /// POST each alert as JSON to this URL (needs `--alerts`; replaces the file's webhook URL).
    #[arg(long, env = "WRIT_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Limits on request contents (see the README's "Limits" table).
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// The request limits, each with a flag, a `WRIT_*` variable and a default (OpenFGA's where it
/// has one); a violation is a 4xx whose `code` names the limit.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Deepest nesting of JSON arrays and objects in a request body (`json_too_deep`).
    #[arg(long, env = "WRIT_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,
    /// Largest `page_size` of read, changes, stores and models (`page_size_too_large`).
    #[arg(long, env = "WRIT_MAX_PAGE_SIZE", default_value_t = 100)]
    pub max_page_size: usize,
    /// Most assertions per model (`too_many_assertions`).
    #[arg(long, env = "WRIT_MAX_ASSERTIONS", default_value_t = 100)]
    pub max_assertions: usize,
    /// Most contextual tuples in one request (`too_many_contextual_tuples`).
    #[arg(long, env = "WRIT_MAX_CONTEXTUAL_TUPLES", default_value_t = 100)]
    pub max_contextual_tuples: usize,
    /// Longest object `type:id`, in bytes (`object_too_long`).
    #[arg(long, env = "WRIT_MAX_OBJECT_BYTES", default_value_t = 256)]
    pub max_object_bytes: usize,
    /// Longest user `type:id[#relation]`, in bytes (`user_too_long`).
    #[arg(long, env = "WRIT_MAX_USER_BYTES", default_value_t = 512)]
    pub max_user_bytes: usize,
    /// Longest relation name, in bytes (`relation_too_long`).
    #[arg(long, env = "WRIT_MAX_RELATION_BYTES", default_value_t = 50)]
    pub max_relation_bytes: usize,
    /// Longest type name, in bytes (`type_too_long`).
    #[arg(long, env = "WRIT_MAX_TYPE_BYTES", default_value_t = 254)]
    pub max_type_bytes: usize,
    /// Largest model as stored JSON, in bytes (`model_too_large`).
    #[arg(long, env = "WRIT_MAX_MODEL_BYTES", default_value_t = 256 * 1024)]
    pub max_model_bytes: usize,
    /// Most nodes one `writ/explain` tree keeps per check; a subtree past it is cut and says so.
    #[arg(long, env = "WRIT_MAX_EXPLAIN_NODES", default_value_t = 10_000)]
    pub max_explain_nodes: usize,
    /// Most types in one model (`too_many_types`).
    #[arg(long, env = "WRIT_MAX_TYPES_PER_MODEL", default_value_t = 100)]
    pub max_types_per_model: usize,
    /// Most conditions in one model (`too_many_conditions`).
    #[arg(long, env = "WRIT_MAX_CONDITIONS_PER_MODEL", default_value_t = 25)]
    pub max_conditions_per_model: usize,
    /// Longest condition (CEL) expression, in bytes (`condition_too_large`).
    #[arg(long, env = "WRIT_MAX_CONDITION_BYTES", default_value_t = 4096)]
    pub max_condition_bytes: usize,
    /// Deepest nesting in a condition expression: brackets, and `?:` chains (`condition_too_complex`).
    #[arg(long, env = "WRIT_MAX_CONDITION_NESTING", default_value_t = 8)]
    pub max_condition_nesting: usize,
    /// Deepest nesting of parentheses and brackets in DSL or `.zed` model text; a definition may
    /// hold twice as many operators (`model_too_complex`).
    #[arg(long, env = "WRIT_MAX_MODEL_NESTING", default_value_t = 64)]
    pub max_model_nesting: usize,
    /// Longest one evaluation may run, in milliseconds; 0 = no limit (`deadline_exceeded`, 504).
    #[arg(long, env = "WRIT_REQUEST_TIMEOUT_MS", default_value_t = 3000)]
    pub request_timeout_ms: u64,
}

/// How `writ serve` writes its log (to standard output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; ANSI colours only when standard output is a terminal, so a log file or a
    /// pipe gets plain text.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Installs the process's log subscriber in this format, at the level `RUST_LOG` sets
    /// (`info` when unset or invalid). Call once, before anything logs.
    pub fn install(self) {
        use std::io::IsTerminal as _;
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt().with_env_filter(filter);
        match self {
            LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
            LogFormat::Json => builder.json().init(),
        }
    }
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

impl Secret {
    /// The value itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
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
    /// The sled directory; `None` runs in memory (or on `datastore` when that is set).
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL URL of `--datastore`; when set it replaces `data_dir`.
    pub datastore: Option<Secret>,
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
    /// How often to sweep expired tuples; `None` never.
    pub expiry_sweep_interval: Option<Duration>,
    /// HTTPS certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The MCP gateway's config file; `None` mounts no gateway. Read (with `${VAR}` from the
    /// environment) by `cli::serve`, which is the only reader of files named by flags before serving.
    pub gateway: Option<PathBuf>,
    /// Whether to serve the console (`--console`).
    pub console: bool,
    /// The alert rules of `--alerts`; `None` computes no alerts.
    pub alerts: Option<AlertConfig>,
    /// The alert webhook (`--alert-webhook`, or the alerts file's `webhook`).
    pub alert_webhook: Option<WebhookSettings>,
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
    /// `--decision-log` is not `all`, `deny` or `off`.
    #[error("`--decision-log` value `{0}` is not one of `all`, `deny`, `off`")]
    DecisionLog(String),
    /// A duration flag does not parse.
    #[error("`--{flag}` value `{value}` is not a duration like `30s`, `15m`, `24h` or `7d`")]
    Duration {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
    },
    /// `--datastore` is not a PostgreSQL URL (the value is not echoed: it may hold a password).
    #[error("`--datastore` must be a `postgres://` or `postgresql://` URL")]
    Datastore,
    /// Only one of `--tls-cert` and `--tls-key` is given.
    #[error("`--tls-cert` and `--tls-key` go together; `--{0}` is missing")]
    TlsPair(&'static str),
    /// The alerts file cannot be read or is invalid, or `--alert-webhook` comes without it.
    #[error("{0}")]
    Alerts(String),
    /// `--console` with `--auth none` on an address other machines can reach.
    #[error("`--console` with `--auth none` is served only on a loopback `--listen` address (not `{0}`); add `--auth preshared`")]
    ExposedConsole(SocketAddr),
}

/// Reads `90`, `250ms`, `30s`, `15m`, `24h` or `7d` (a bare number is seconds).
fn parse_duration(flag: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::Duration { flag, value: text.to_string() };
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis_per = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number.checked_mul(millis_per).map(Duration::from_millis).ok_or_else(bad)
}

impl Config {
    /// Checks the raw flags.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let listen: SocketAddr = args.listen.parse().map_err(|_| ConfigError::Listen(args.listen.clone()))?;
        let limits = &args.limits;
        for (name, value) in [
            ("max-depth", args.max_depth as usize),
            ("max-tuples-per-write", args.max_tuples_per_write),
            ("max-body-bytes", args.max_body_bytes),
            ("max-batch-check", args.max_batch_check),
            ("decision-log-max-count", args.decision_log_max_count),
            ("max-filter-ids", args.max_filter_ids),
            ("max-principals", args.max_principals),
            ("max-json-depth", limits.max_json_depth),
            ("max-page-size", limits.max_page_size),
            ("max-object-bytes", limits.max_object_bytes),
            ("max-user-bytes", limits.max_user_bytes),
            ("max-relation-bytes", limits.max_relation_bytes),
            ("max-type-bytes", limits.max_type_bytes),
            ("max-model-bytes", limits.max_model_bytes),
            ("max-types-per-model", limits.max_types_per_model),
            ("max-condition-bytes", limits.max_condition_bytes),
            ("max-condition-nesting", limits.max_condition_nesting),
            ("max-model-nesting", limits.max_model_nesting),
            ("max-explain-nodes", limits.max_explain_nodes),
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
        let (alerts, alert_webhook) = match (&args.alerts, &args.alert_webhook) {
            (Some(path), url) => {
                let (alerts, webhook) = alerts::read_alerts(path, url.as_deref())?;
                (Some(alerts), webhook)
            }
            (None, Some(_)) => return Err(ConfigError::Alerts("`--alert-webhook` needs `--alerts FILE`".into())),
            (None, None) => (None, None),
        };
        let mode: DecisionLogMode =
            args.decision_log.parse().map_err(|_| ConfigError::DecisionLog(args.decision_log.clone()))?;
        let max_age = parse_duration("decision-log-max-age", &args.decision_log_max_age)?;
        let sweep = parse_duration("expiry-sweep-interval", &args.expiry_sweep_interval)?;
        let decision_log = DecisionLogConfig {
            mode,
            max_count: args.decision_log_max_count,
            max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
            ..DecisionLogConfig::default()
        };
        let tls = match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsPair("tls-key")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("tls-cert")),
        };
        if let Some(Secret(url)) = &args.datastore {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Datastore);
            }
        }
        if args.console && matches!(auth, Auth::None) && !listen.ip().is_loopback() {
            return Err(ConfigError::ExposedConsole(listen));
        }
        Ok(Config {
            listen,
            data_dir: if args.memory || args.datastore.is_some() { None } else { Some(args.data_dir) },
            datastore: args.datastore,
            engine: EngineConfig {
                limits: Limits { max_depth: args.max_depth, ..Limits::default() },
                max_tuples_per_write: args.max_tuples_per_write,
                checkpoint_min_tuples: args.checkpoint_min_tuples,
                decision_log,
                input: InputLimits {
                    max_object_bytes: limits.max_object_bytes,
                    max_user_bytes: limits.max_user_bytes,
                    max_relation_bytes: limits.max_relation_bytes,
                    max_type_bytes: limits.max_type_bytes,
                    max_contextual_tuples: limits.max_contextual_tuples,
                    max_model_bytes: limits.max_model_bytes,
                    max_types_per_model: limits.max_types_per_model,
                    max_conditions_per_model: limits.max_conditions_per_model,
                    max_condition_bytes: limits.max_condition_bytes,
                    max_condition_nesting: limits.max_condition_nesting,
                    request_timeout: (limits.request_timeout_ms > 0)
                        .then(|| Duration::from_millis(limits.request_timeout_ms)),
                    max_explain_nodes: limits.max_explain_nodes,
                },
            },
            api: ApiOptions {
                max_body_bytes: args.max_body_bytes,
                max_batch_check: args.max_batch_check,
                max_filter_ids: args.max_filter_ids,
                max_principals: args.max_principals,
                max_json_depth: limits.max_json_depth,
                max_page_size: limits.max_page_size,
                max_assertions: limits.max_assertions,
                max_model_nesting: limits.max_model_nesting,
            },
            auth,
            revision_wait: Duration::from_millis(args.revision_wait_ms),
            authzen_store: args.authzen_store.filter(|id| !id.is_empty()),
            expiry_sweep_interval: (!sweep.is_zero()).then_some(sweep),
            tls,
            gateway: args.gateway,
            console: args.console,
            alerts,
            alert_webhook,
        })
    }

    /// The HTTP router's settings.
    pub fn router_config(&self) -> RouterConfig {
        RouterConfig {
            options: self.api,
            revision_wait: self.revision_wait,
            authzen_store: self.authzen_store.clone(),
            auth: self.auth.clone(),
            console: self.console,
            alert_webhook: None,
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
        assert_eq!(config.engine.input.request_timeout, Some(Duration::from_millis(3000)));
        assert_eq!(
            config.engine.input,
            InputLimits { request_timeout: Some(Duration::from_secs(3)), ..InputLimits::default() }
        );
        assert_eq!((config.api.max_json_depth, config.api.max_page_size), (64, 100));
        assert!(parse(&["--request-timeout-ms", "0"]).unwrap().engine.input.request_timeout.is_none());
        assert_eq!(parse(&["--max-object-bytes", "0"]).unwrap_err(), ConfigError::ZeroLimit("max-object-bytes"));
        assert_eq!(parse(&["--max-contextual-tuples", "7"]).unwrap().engine.input.max_contextual_tuples, 7);
        let router = parse(&["--revision-wait-ms", "5", "--authzen-store", "01S"]).unwrap().router_config();
        assert_eq!((router.revision_wait, router.authzen_store.as_deref()), (Duration::from_millis(5), Some("01S")));
    }

    #[test]
    fn datastore_takes_a_postgres_url_and_never_echoes_it() {
        let config = parse(&["--datastore", "postgres://writ:pw@127.0.0.1:5432/writ"]).unwrap();
        assert_eq!(config.datastore.as_ref().map(Secret::expose), Some("postgres://writ:pw@127.0.0.1:5432/writ"));
        assert!(config.data_dir.is_none(), "PostgreSQL replaces the sled directory");
        assert!(!format!("{config:?}").contains("pw"), "Debug must not show the URL");
        let error = parse(&["--datastore", "mysql://writ:pw@host/db"]).unwrap_err();
        assert_eq!(error, ConfigError::Datastore);
        assert!(!error.to_string().contains("pw"));
        assert!(parse(&[]).unwrap().datastore.is_none());
    }

    #[test]
    fn decision_log_and_sweep_flags_are_checked() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.engine.decision_log.mode, DecisionLogMode::Deny);
        assert_eq!(config.engine.decision_log.max_age_ms, 7 * 86_400_000);
        assert_eq!(config.expiry_sweep_interval, Some(Duration::from_secs(60)));
        let config =
            parse(&["--decision-log", "all", "--decision-log-max-age", "90m", "--expiry-sweep-interval", "0"]).unwrap();
        assert_eq!(config.engine.decision_log.mode, DecisionLogMode::All);
        assert_eq!(config.engine.decision_log.max_age_ms, 90 * 60_000);
        assert_eq!(config.expiry_sweep_interval, None);
        assert_eq!(parse(&["--decision-log", "some"]).unwrap_err(), ConfigError::DecisionLog("some".into()));
        assert!(matches!(
            parse(&["--decision-log-max-age", "7 days"]).unwrap_err(),
            ConfigError::Duration { flag: "decision-log-max-age", .. }
        ));
        assert_eq!(
            parse(&["--decision-log-max-count", "0"]).unwrap_err(),
            ConfigError::ZeroLimit("decision-log-max-count")
        );
    }

    #[test]
    fn tls_needs_both_cert_and_key() {
        assert_eq!(parse(&[]).unwrap().tls, None);
        let both = parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap().tls.unwrap();
        assert_eq!((both.cert, both.key), (PathBuf::from("c.pem"), PathBuf::from("k.pem")));
        assert_eq!(parse(&["--tls-cert", "c.pem"]).unwrap_err(), ConfigError::TlsPair("tls-key"));
        assert_eq!(parse(&["--tls-key", "k.pem"]).unwrap_err(), ConfigError::TlsPair("tls-cert"));
    }

    #[test]
    fn an_unauthenticated_console_is_served_only_on_loopback() {
        assert!(!parse(&[]).unwrap().router_config().console);
        assert!(parse(&["--console"]).unwrap().router_config().console);
        assert!(parse(&["--console", "--listen", "[::1]:8080"]).unwrap().console);
        let exposed = parse(&["--console", "--listen", "0.0.0.0:8080"]).unwrap_err();
        assert_eq!(exposed, ConfigError::ExposedConsole("0.0.0.0:8080".parse().unwrap()));
        let keys =
            ["--console", "--listen", "0.0.0.0:8080", "--auth", "preshared", "--preshared-keys", "admin:k-0123456789"];
        assert!(parse(&keys).unwrap().console);
    }

    #[test]
    fn gateway_flag_names_the_config_file() {
        assert_eq!(parse(&[]).unwrap().gateway, None);
        assert_eq!(parse(&["--gateway", "gw.yaml"]).unwrap().gateway, Some(PathBuf::from("gw.yaml")));
    }
}
