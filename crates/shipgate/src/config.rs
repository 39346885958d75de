//! Configuration: `config/default.toml` (compiled in) < an optional file named by
//! `SHIPGATE_CONFIG` < `SHIPGATE_*` environment variables < `DATABASE_URL`.
//! Layering with figment as in zero2prod's `configuration.rs`; validation happens once
//! here so a bad setting fails at start with a message that names it.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults, also shipped as `config/default.toml` for reference.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

fn err(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_owned(), message: message.into() }
}

#[derive(Debug, Deserialize)]
struct Raw {
    listen: String,
    database_url: Option<SecretString>,
    database_max_connections: u32,
    migrate_on_start: bool,
    master_key: Option<SecretString>,
    master_key_id: u8,
    previous_master_keys: SecretString,
    api_key_env: String,
    body_limit_bytes: usize,
    request_timeout_ms: u64,
    carrier_connect_timeout_ms: u64,
    carrier_request_timeout_ms: u64,
    carrier_breaker_threshold: u32,
    carrier_breaker_cooldown_ms: u64,
    idempotency_ttl_hours: u32,
    idempotency_lock_seconds: u32,
    exchange_retention_days: u32,
    outbound_event_retention_days: u32,
    tracking_event_retention_days: u32,
    exchange_body_limit_bytes: usize,
    document_retention_days: u32,
    document_max_bytes: usize,
    workers_enabled: bool,
    worker_concurrency: usize,
    inbound_commit_workers: usize,
    inbound_commit_batch: usize,
    read_group_workers: usize,
    jobs_poll_interval_ms: u64,
    shutdown_drain_seconds: u64,
    log_format: String,
    webhook_allow_networks: String,
    webhook_retry_schedule_ms: Vec<u64>,
    webhook_retry_jitter: f64,
    webhook_concurrency: usize,
    webhook_batch_size: u32,
    webhook_connect_timeout_ms: u64,
    webhook_request_timeout_ms: u64,
    webhook_poll_interval_ms: u64,
    webhook_secret_overlap_hours: u32,
    public_base_url: Option<String>,
    trusted_proxies: String,
    http_header_read_timeout_ms: u64,
    http_body_read_timeout_ms: u64,
    max_connections_per_client: usize,
    console_session_idle_minutes: u64,
    console_session_max_hours: u64,
    tracking: TrackingRaw,
}

#[derive(Debug, Deserialize)]
struct TrackingRaw {
    enabled: bool,
    round_ms: u64,
    batch_size: u32,
    max_outstanding: u32,
    lease_secs: u64,
    horizon_ms: u64,
    rate_share: f64,
    default_rate_per_second: f64,
    first_poll_secs: f64,
    interval_secs: std::collections::BTreeMap<String, f64>,
    idle_after_hours: f64,
    idle_factor: f64,
    max_interval_secs: f64,
    failure_backoff_secs: f64,
    failure_backoff_max_secs: f64,
    jitter: f64,
    max_age_days: f64,
}

/// The tracking engine (src/tracking): when shipments are polled and how fast.
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    pub enabled: bool,
    /// How often an instance looks for due shipments.
    pub round: Duration,
    /// Most shipments one instance claims per connection per round.
    pub batch_size: u32,
    /// Most claimed shipments one instance holds at once (waiting for their slot or in flight).
    pub max_outstanding: u32,
    /// How long a claim lasts after its slot; a dead instance's claims come back after it.
    pub lease: Duration,
    /// How far ahead a claim may book call slots of a connection's pace.
    pub horizon: Duration,
    /// Share of a connection's rate limit the engine may use (the rest is left to API calls).
    pub rate_share: f64,
    /// Polling pace for connections without a rate limit, calls per second.
    pub default_rate_per_second: f64,
    /// Delay before the first poll of a newly trackable shipment.
    pub first_poll: Duration,
    /// Poll interval per non-terminal status.
    pub intervals: std::collections::HashMap<crate::domain::Status, Duration>,
    /// No status change for this long: intervals are multiplied by `idle_factor`.
    pub idle_after: Duration,
    pub idle_factor: f64,
    pub max_interval: Duration,
    /// After a failed poll: base × 2^(failures-1), at most the max (or the carrier's Retry-After).
    pub failure_backoff: Duration,
    pub failure_backoff_max: Duration,
    /// Each interval is spread by ± this fraction.
    pub jitter: f64,
    /// Non-terminal shipments with no status change for this long become `expired`.
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: Option<SecretString>,
    pub database_max_connections: u32,
    pub migrate_on_start: bool,
    /// (id, key) pairs; the first is the current key.
    pub master_keys: Vec<(u8, [u8; 32])>,
    pub api_key_env: String,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub carrier_connect_timeout: Duration,
    pub carrier_request_timeout: Duration,
    pub carrier_breaker_threshold: u32,
    pub carrier_breaker_cooldown: Duration,
    pub idempotency_ttl: Duration,
    pub idempotency_lock: Duration,
    /// How long the carrier exchange log is kept, in days (by month partitions).
    pub exchange_retention_days: u32,
    /// How long outbound events, their webhook deliveries and attempts are kept, in days.
    pub outbound_event_retention_days: u32,
    /// How long tracking events and raw pushes are kept, in days after their shipment was created.
    pub tracking_event_retention_days: u32,
    pub exchange_body_limit_bytes: usize,
    /// How long documents (proof-of-delivery signatures) are kept, in days.
    pub document_retention_days: u32,
    /// Largest document kept; a larger one is refused (not stored).
    pub document_max_bytes: usize,
    pub workers_enabled: bool,
    pub worker_concurrency: usize,
    /// Inbound scans written at once per instance, each as a group commit.
    pub inbound_commit_workers: usize,
    /// Most scans one group commit holds.
    pub inbound_commit_batch: usize,
    /// Coalesced shipment reads one instance runs at once (`service::shipments::reads`).
    pub read_group_workers: usize,
    pub jobs_poll_interval: Duration,
    pub shutdown_drain: Duration,
    /// Where carriers reach this gateway (`https://gw.example.com`); inbound URLs are
    /// reported relative when unset.
    pub public_base_url: Option<String>,
    pub log_format: LogFormat,
    pub tracking: TrackingConfig,
    pub webhooks: WebhookSettings,
    /// Peers whose `X-Forwarded-For` is believed (`trusted_proxies`); every other
    /// peer is the client itself.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Longest a client may take to send a request's head (and an idle keep-alive
    /// connection may wait for its next request).
    pub http_header_read_timeout: Duration,
    /// Longest a client may take to send a request's whole body, from its head on.
    pub http_body_read_timeout: Duration,
    /// Most open connections one client address may hold (trusted proxies exempt).
    pub max_connections_per_client: usize,
    /// A console session unused this long ends (`console_session_idle_minutes`).
    pub console_session_idle: Duration,
    /// A console session ends this long after sign-in, used or not (`console_session_max_hours`).
    pub console_session_max: Duration,
}

/// Outbound webhook delivery settings (`webhook_*` keys).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Networks webhooks may reach despite the SSRF guard (`SHIPGATE_WEBHOOK_ALLOW_NETWORKS`).
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Delay before each retry; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// Each delay is spread by up to ± this fraction.
    pub retry_jitter: f64,
    pub concurrency: usize,
    pub batch_size: u32,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub poll_interval: Duration,
    /// How long a rotated-out secret keeps signing beside the new one (0: not at all).
    pub secret_overlap: Duration,
}

impl Config {
    /// Load from the defaults, `SHIPGATE_CONFIG`, the environment.
    pub fn load() -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Ok(path) = std::env::var("SHIPGATE_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(err("SHIPGATE_CONFIG", format!("file {path:?} not found")));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig
            .merge(Env::prefixed("SHIPGATE_").ignore(&["CONFIG", "MASTER_KEY_FILE"]).split("__"))
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()));
        // Secrets may also come from files (container secrets): `<NAME>_FILE` holds the path.
        for (var, key) in [("SHIPGATE_MASTER_KEY_FILE", "master_key"), ("DATABASE_URL_FILE", "database_url")] {
            if let Ok(path) = std::env::var(var) {
                let value =
                    std::fs::read_to_string(&path).map_err(|e| err(var, format!("cannot read {path:?}: {e}")))?;
                fig = fig.merge(Toml::string(&format!("{key} = {:?}", value.trim())));
            }
        }
        Self::from_figment(fig)
    }

    /// Load from a TOML string on top of the defaults (tests, sandbox).
    pub fn from_toml_overrides(overrides: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides)))
    }

    fn from_figment(fig: Figment) -> Result<Config, ConfigError> {
        let raw: Raw = fig.extract().map_err(|e| {
            let setting = e.path.join(".");
            let setting = if setting.is_empty() { "configuration".to_owned() } else { setting };
            err(&setting, e.kind.to_string())
        })?;
        let listen = raw
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| err("listen (SHIPGATE_LISTEN)", format!("{:?} is not address:port: {e}", raw.listen)))?;
        let mut master_keys = Vec::new();
        if let Some(key) = &raw.master_key {
            master_keys.push((raw.master_key_id, decode_key("master_key (SHIPGATE_MASTER_KEY)", key.expose_secret())?));
        }
        for part in raw.previous_master_keys.expose_secret().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let setting = "previous_master_keys (SHIPGATE_PREVIOUS_MASTER_KEYS)";
            let (id, key) = part.split_once(':').ok_or_else(|| err(setting, "expected ID:BASE64 entries"))?;
            let id: u8 = id.parse().map_err(|_| err(setting, format!("key id {id:?} is not a number 0-255")))?;
            if master_keys.iter().any(|(k, _)| *k == id) {
                return Err(err(setting, format!("key id {id} appears twice")));
            }
            master_keys.push((id, decode_key(setting, key)?));
        }
        if let Some(url) = &raw.database_url {
            check_database_url(url.expose_secret())?;
        }
        if raw.database_max_connections == 0 {
            return Err(err("database_max_connections", "must be at least 1"));
        }
        if raw.api_key_env.is_empty() || !raw.api_key_env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(err("api_key_env", "must be lowercase letters and digits"));
        }
        if raw.body_limit_bytes < 1024 {
            return Err(err("body_limit_bytes", "must be at least 1024"));
        }
        if !(1..=64).contains(&raw.inbound_commit_workers) {
            return Err(err("inbound_commit_workers", "must be from 1 to 64"));
        }
        if !(1..=64).contains(&raw.read_group_workers) {
            return Err(err("read_group_workers", "must be from 1 to 64"));
        }
        if !(1..=1000).contains(&raw.inbound_commit_batch) {
            return Err(err("inbound_commit_batch", "must be from 1 to 1000"));
        }
        if !(1..=1024).contains(&raw.worker_concurrency) {
            return Err(err("worker_concurrency", "must be from 1 to 1024"));
        }
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(err("log_format", format!("{other:?} is neither \"text\" nor \"json\""))),
        };
        let tracking = tracking_config(raw.tracking)?;
        let mut allow_networks = Vec::new();
        for part in raw.webhook_allow_networks.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // A bare address means that one host.
            let net = part
                .parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    err("webhook_allow_networks (SHIPGATE_WEBHOOK_ALLOW_NETWORKS)", format!("{part:?} is not a CIDR"))
                })?;
            allow_networks.push(net);
        }
        if !(0.0..=1.0).contains(&raw.webhook_retry_jitter) {
            return Err(err("webhook_retry_jitter", "must be between 0 and 1"));
        }
        if raw.webhook_concurrency == 0 || raw.webhook_batch_size == 0 {
            return Err(err("webhook_concurrency / webhook_batch_size", "must be at least 1"));
        }
        let trusted_proxies = networks("trusted_proxies (SHIPGATE_TRUSTED_PROXIES)", &raw.trusted_proxies)?;
        if raw.http_header_read_timeout_ms == 0 || raw.http_body_read_timeout_ms == 0 {
            return Err(err("http_header_read_timeout_ms / http_body_read_timeout_ms", "must be at least 1"));
        }
        if raw.console_session_idle_minutes == 0 || raw.console_session_max_hours == 0 {
            return Err(err("console_session_idle_minutes / console_session_max_hours", "must be at least 1"));
        }
        if raw.max_connections_per_client == 0 {
            return Err(err("max_connections_per_client", "must be at least 1"));
        }
        // A delivery still on its retry schedule needs its event (retention drops both).
        let schedule: Duration = raw.webhook_retry_schedule_ms.iter().map(|ms| Duration::from_millis(*ms)).sum();
        if raw.outbound_event_retention_days == 0
            || Duration::from_secs(u64::from(raw.outbound_event_retention_days) * 86_400) <= schedule
        {
            return Err(err(
                "outbound_event_retention_days",
                format!("must be at least 1 and longer than the webhook retry schedule ({} s)", schedule.as_secs()),
            ));
        }
        if raw.tracking_event_retention_days == 0 {
            return Err(err("tracking_event_retention_days", "must be at least 1"));
        }
        let webhooks = WebhookSettings {
            allow_networks,
            retry_schedule: raw.webhook_retry_schedule_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            retry_jitter: raw.webhook_retry_jitter,
            concurrency: raw.webhook_concurrency,
            batch_size: raw.webhook_batch_size,
            connect_timeout: Duration::from_millis(raw.webhook_connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(raw.webhook_request_timeout_ms.max(1)),
            poll_interval: Duration::from_millis(raw.webhook_poll_interval_ms.max(10)),
            secret_overlap: Duration::from_secs(u64::from(raw.webhook_secret_overlap_hours) * 3600),
        };
        let public_base_url =
            raw.public_base_url.map(|u| u.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        if let Some(u) = &public_base_url
            && reqwest::Url::parse(u).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true)
        {
            return Err(err(
                "public_base_url (SHIPGATE_PUBLIC_BASE_URL)",
                format!("{u:?} is not an absolute http(s) URL"),
            ));
        }
        Ok(Config {
            webhooks,
            listen,
            public_base_url,
            database_url: raw.database_url,
            database_max_connections: raw.database_max_connections,
            migrate_on_start: raw.migrate_on_start,
            master_keys,
            api_key_env: raw.api_key_env,
            body_limit_bytes: raw.body_limit_bytes,
            request_timeout: Duration::from_millis(raw.request_timeout_ms),
            carrier_connect_timeout: Duration::from_millis(raw.carrier_connect_timeout_ms),
            carrier_request_timeout: Duration::from_millis(raw.carrier_request_timeout_ms),
            carrier_breaker_threshold: raw.carrier_breaker_threshold.max(1),
            carrier_breaker_cooldown: Duration::from_millis(raw.carrier_breaker_cooldown_ms),
            idempotency_ttl: Duration::from_secs(u64::from(raw.idempotency_ttl_hours) * 3600),
            idempotency_lock: Duration::from_secs(u64::from(raw.idempotency_lock_seconds)),
            exchange_retention_days: raw.exchange_retention_days,
            outbound_event_retention_days: raw.outbound_event_retention_days,
            tracking_event_retention_days: raw.tracking_event_retention_days,
            exchange_body_limit_bytes: raw.exchange_body_limit_bytes,
            document_retention_days: raw.document_retention_days,
            document_max_bytes: raw.document_max_bytes.max(1),
            workers_enabled: raw.workers_enabled,
            worker_concurrency: raw.worker_concurrency,
            inbound_commit_workers: raw.inbound_commit_workers,
            inbound_commit_batch: raw.inbound_commit_batch,
            read_group_workers: raw.read_group_workers,
            jobs_poll_interval: Duration::from_millis(raw.jobs_poll_interval_ms.max(10)),
            shutdown_drain: Duration::from_secs(raw.shutdown_drain_seconds),
            log_format,
            tracking,
            trusted_proxies,
            http_header_read_timeout: Duration::from_millis(raw.http_header_read_timeout_ms),
            http_body_read_timeout: Duration::from_millis(raw.http_body_read_timeout_ms),
            max_connections_per_client: raw.max_connections_per_client,
            console_session_idle: Duration::from_secs(raw.console_session_idle_minutes * 60),
            console_session_max: Duration::from_secs(raw.console_session_max_hours * 3600),
        })
    }

    /// The database URL, or an error naming the setting.
    pub fn require_database_url(&self) -> Result<&SecretString, ConfigError> {
        self.database_url.as_ref().ok_or_else(|| err("DATABASE_URL", "not set; point it at a Postgres ≥ 14 database"))
    }

    /// The master keys, or an error naming the setting.
    pub fn require_master_key(&self) -> Result<&[(u8, [u8; 32])], ConfigError> {
        if self.master_keys.is_empty() {
            return Err(err(
                "SHIPGATE_MASTER_KEY",
                "not set; it must be base64 of 32 random bytes (openssl rand -base64 32)",
            ));
        }
        Ok(&self.master_keys)
    }
}

/// Comma-separated CIDRs or bare addresses (a bare address is that one host).
fn networks(setting: &str, list: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| err(setting, format!("{part:?} is not a CIDR or an address")))
        })
        .collect()
}

/// A `DATABASE_URL` sqlx can use; the message never repeats the URL (it may hold a
/// password).
fn check_database_url(url: &str) -> Result<(), ConfigError> {
    use std::str::FromStr as _;
    let setting = "DATABASE_URL (database_url)";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(err(setting, "must be a postgres:// URL, e.g. postgres://user:password@host:5432/shipgate"));
    }
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(drop)
        .map_err(|e| err(setting, format!("is not a usable Postgres URL: {e}")))
}

fn secs(setting: &str, v: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(v).map_err(|_| err(setting, format!("{v} is not a duration in seconds")))
}

fn tracking_config(t: TrackingRaw) -> Result<TrackingConfig, ConfigError> {
    use crate::domain::{Status, is_terminal};
    let mut intervals = std::collections::HashMap::new();
    for (name, v) in &t.interval_secs {
        let setting = format!("tracking.interval_secs.{name}");
        let status = Status::parse(name).ok_or_else(|| err(&setting, "is not a status"))?;
        if is_terminal(status, None) {
            return Err(err(&setting, "terminal statuses are never polled"));
        }
        intervals.insert(status, secs(&setting, *v)?);
    }
    if let Some(missing) = Status::ALL.into_iter().find(|s| !is_terminal(*s, None) && !intervals.contains_key(s)) {
        return Err(err(&format!("tracking.interval_secs.{}", missing.as_str()), "is required"));
    }
    if t.batch_size == 0 || t.max_outstanding == 0 {
        return Err(err("tracking.batch_size", "batch_size and max_outstanding must be at least 1"));
    }
    if !(t.rate_share > 0.0 && t.rate_share <= 1.0) {
        return Err(err("tracking.rate_share", "must be in (0, 1]"));
    }
    if !(t.default_rate_per_second > 0.0 && t.default_rate_per_second.is_finite()) {
        return Err(err("tracking.default_rate_per_second", "must be positive"));
    }
    if !(0.0..1.0).contains(&t.jitter) {
        return Err(err("tracking.jitter", "must be in [0, 1)"));
    }
    if t.lease_secs == 0 || t.round_ms == 0 {
        return Err(err("tracking.lease_secs", "lease_secs and round_ms must be at least 1"));
    }
    if !(t.idle_factor >= 1.0 && t.idle_factor.is_finite()) {
        return Err(err("tracking.idle_factor", "must be at least 1"));
    }
    Ok(TrackingConfig {
        enabled: t.enabled,
        round: Duration::from_millis(t.round_ms),
        batch_size: t.batch_size,
        max_outstanding: t.max_outstanding,
        lease: Duration::from_secs(t.lease_secs),
        horizon: Duration::from_millis(t.horizon_ms),
        rate_share: t.rate_share,
        default_rate_per_second: t.default_rate_per_second,
        first_poll: secs("tracking.first_poll_secs", t.first_poll_secs)?,
        intervals,
        idle_after: secs("tracking.idle_after_hours", t.idle_after_hours * 3600.0)?,
        idle_factor: t.idle_factor,
        max_interval: secs("tracking.max_interval_secs", t.max_interval_secs)?,
        failure_backoff: secs("tracking.failure_backoff_secs", t.failure_backoff_secs)?,
        failure_backoff_max: secs("tracking.failure_backoff_max_secs", t.failure_backoff_max_secs)?,
        jitter: t.jitter,
        max_age: secs("tracking.max_age_days", t.max_age_days * 86400.0)?,
    })
}

fn decode_key(setting: &str, b64: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| err(setting, "is not valid base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| err(setting, format!("must decode to 32 bytes, got {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_name_the_listen_address() {
        let cfg = Config::from_toml_overrides("").expect("defaults are valid");
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert!(cfg.master_keys.is_empty());
        assert!(cfg.require_master_key().unwrap_err().to_string().contains("SHIPGATE_MASTER_KEY"));
    }

    #[test]
    fn a_short_master_key_is_refused_with_the_setting_named() {
        let e = Config::from_toml_overrides("master_key = \"c2hvcnQ=\"").unwrap_err();
        assert!(e.setting.contains("SHIPGATE_MASTER_KEY"), "{e}");
        assert!(e.message.contains("32 bytes"), "{e}");
    }

    #[test]
    fn an_invalid_database_url_names_the_setting_and_not_the_password() {
        for url in ["nonsense", "mysql://u:hunter2@h/db", "postgres://u:hunter2@h:99999/db"] {
            let e = Config::from_toml_overrides(&format!("database_url = {url:?}")).unwrap_err();
            assert!(e.setting.contains("DATABASE_URL"), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let ok = Config::from_toml_overrides("database_url = \"postgres://u:p@localhost:5432/db\"");
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn a_bad_listen_address_and_wrong_types_name_the_setting() {
        let e = Config::from_toml_overrides("listen = \"nowhere\"").unwrap_err();
        assert!(e.to_string().contains("SHIPGATE_LISTEN"), "{e}");
        let e = Config::from_toml_overrides("body_limit_bytes = \"lots\"").unwrap_err();
        assert_eq!(e.setting, "body_limit_bytes", "{e}");
    }

    #[test]
    fn trusted_proxies_and_client_limits_are_read_and_checked() {
        let cfg = Config::from_toml_overrides("trusted_proxies = \"10.0.0.0/8, 192.168.1.1\"").expect("valid");
        assert_eq!(cfg.trusted_proxies.len(), 2);
        assert!(cfg.trusted_proxies[1].contains(&"192.168.1.1".parse::<std::net::IpAddr>().expect("ip")));
        let d = Config::from_toml_overrides("").expect("defaults");
        assert!(d.trusted_proxies.is_empty(), "no proxy is trusted by default");
        assert_eq!(d.http_header_read_timeout, Duration::from_secs(10));
        let e = Config::from_toml_overrides("trusted_proxies = \"everyone\"").unwrap_err();
        assert!(e.setting.contains("SHIPGATE_TRUSTED_PROXIES"), "{e}");
        let e = Config::from_toml_overrides("max_connections_per_client = 0").unwrap_err();
        assert_eq!(e.setting, "max_connections_per_client", "{e}");
    }

    #[test]
    fn retention_outlives_the_webhook_retry_schedule() {
        let d = Config::from_toml_overrides("").expect("defaults");
        assert_eq!((d.outbound_event_retention_days, d.tracking_event_retention_days), (90, 400));
        let e = Config::from_toml_overrides("outbound_event_retention_days = 1").unwrap_err();
        assert_eq!(e.setting, "outbound_event_retention_days", "{e}");
        let ok = Config::from_toml_overrides("outbound_event_retention_days = 1\nwebhook_retry_schedule_ms = [5000]");
        assert!(ok.is_ok(), "{:?}", ok.err());
        let e = Config::from_toml_overrides("tracking_event_retention_days = 0").unwrap_err();
        assert_eq!(e.setting, "tracking_event_retention_days", "{e}");
    }
}
