//! The application state (svix's one `AppState`): the pool, the configuration, the
//! crypto, the carrier clients built once per connection version, and the per-instance
//! caches. It holds state only: nothing above it (http, service, jobs, webhooks,
//! tracking) is imported here; the command that serves starts the workers (see
//! runtime.rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::cache::{InboundCache, KeyCache};
use crate::carriers::token::{RenewalGuard, Token};
use crate::carriers::{self, CarrierClient, CarrierError, ConnectionConfig, Credentials, Shared, TokenStore};
use crate::config::Config;
use crate::crypto::{Crypto, Purpose};
use crate::store;
use crate::store::connections::ConnectionRow;

/// A built client and the connection version (`updated_at`) it was built from.
type CachedClient = (DateTime<Utc>, Arc<dyn CarrierClient>);

pub struct Inner {
    pub db: PgPool,
    /// Most-recently-used connections for the short request paths (`store::warm`).
    pub warm: store::warm::Warm,
    pub config: Config,
    pub crypto: Arc<Crypto>,
    pub shared: Shared,
    pub metrics: PrometheusHandle,
    clients: Mutex<HashMap<String, CachedClient>>,
    pub key_cache: KeyCache,
    /// When this instance's job worker last went round its loop (unix ms; 0 = not
    /// running). `/readyz` reports a worker that stopped going round.
    pub worker_heartbeat: std::sync::atomic::AtomicI64,
    connection_cache: Mutex<HashMap<String, (std::time::Instant, ConnectionRow)>>,
    /// Inbound push verifiers, failed-auth counters and status mappings.
    pub inbound: InboundCache,
    /// The queue of the inbound scans' group commit (`service::inbound`), started with
    /// the first scan. Held as `Any`: app.rs holds state only and names no layer above.
    pub scan_lane: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
    /// The queue of the coalesced shipment reads (`service::shipments::reads`), started
    /// with the first read; held as `Any` like `scan_lane`.
    pub read_lane: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

/// How long a connection row read on the booking path is reused (like API keys: safe to
/// lose; a change on this instance evicts it at once, on others within this time).
const CONNECTION_CACHE_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The process-wide Prometheus recorder (installed once; tests build many apps).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (only possible in odd test set-ups): keep a detached one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

impl AppState {
    pub fn new(db: PgPool, config: Config) -> anyhow::Result<AppState> {
        crate::crypto::install_tls_provider();
        let crypto = Crypto::new(config.require_master_key()?).ok_or_else(|| anyhow::anyhow!("no master key"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.carrier_connect_timeout)
            .timeout(config.carrier_request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("shipgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let shared = Shared { http, exchange_body_limit: config.exchange_body_limit_bytes };
        let warm = store::warm::Warm::new(db.clone());
        Ok(AppState(Arc::new(Inner {
            warm,
            db,
            config,
            crypto: Arc::new(crypto),
            shared,
            metrics: metrics_handle(),
            clients: Mutex::new(HashMap::new()),
            key_cache: Default::default(),
            worker_heartbeat: std::sync::atomic::AtomicI64::new(0),
            connection_cache: Mutex::new(HashMap::new()),
            inbound: Default::default(),
            scan_lane: std::sync::OnceLock::new(),
            read_lane: std::sync::OnceLock::new(),
        })))
    }

    /// A tenant's connection, from a short-lived cache or the database.
    pub async fn connection(&self, tenant_id: &str, id: &str) -> sqlx::Result<Option<ConnectionRow>> {
        if let Ok(cache) = self.connection_cache.lock()
            && let Some((at, row)) = cache.get(id)
            && at.elapsed() < CONNECTION_CACHE_TTL
            && row.tenant_id == tenant_id
        {
            return Ok(Some(row.clone()));
        }
        let row = self.warm.with(async |c| store::connections::get(c, tenant_id, id).await).await?;
        if let (Some(r), Ok(mut cache)) = (&row, self.connection_cache.lock()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(id.to_owned(), (std::time::Instant::now(), r.clone()));
        }
        Ok(row)
    }

    /// Drop a connection from the cache after it changed.
    pub fn forget_connection(&self, id: &str) {
        if let Ok(mut cache) = self.connection_cache.lock() {
            cache.remove(id);
        }
        self.inbound.evict(id);
    }

    /// Decrypt a connection's credentials.
    pub fn credentials(&self, row: &ConnectionRow) -> anyhow::Result<Credentials> {
        let plain = self.crypto.decrypt(&row.tenant_id, &row.id, Purpose::Credentials, &row.credentials_enc)?;
        let map: std::collections::BTreeMap<String, String> = serde_json::from_slice(&plain)?;
        Ok(Credentials(map.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect()))
    }

    /// The client for a connection, built once per connection version.
    pub fn client(&self, row: &ConnectionRow) -> Result<Arc<dyn CarrierClient>, CarrierError> {
        if let Ok(cache) = self.clients.lock()
            && let Some((version, client)) = cache.get(&row.id)
            && *version == row.updated_at
        {
            return Ok(client.clone());
        }
        let credentials = self
            .credentials(row)
            .map_err(|e| CarrierError::Misconfigured { message: format!("stored credentials cannot be read: {e}") })?;
        let cfg = ConnectionConfig {
            tenant_id: row.tenant_id.clone(),
            connection_id: row.id.clone(),
            carrier: row.carrier.clone(),
            base_url: row.base_url.clone(),
            credentials,
            settings: row.settings.0.clone(),
            // Not the AppState itself: the state caches this client, and a cycle
            // would keep the pool (and its connections) alive forever.
            token_store: Arc::new(DbTokenStore {
                db: self.db.clone(),
                crypto: self.crypto.clone(),
                lock_timeout: self.config.carrier_request_timeout * 2,
                tenant_id: row.tenant_id.clone(),
                connection_id: row.id.clone(),
            }),
            limits: Arc::new(carriers::Limits::new(carriers::LimitsConfig {
                breaker_threshold: self.config.carrier_breaker_threshold,
                breaker_cooldown: self.config.carrier_breaker_cooldown,
                ..carriers::limits_for(&row.carrier, &row.settings.0)
            })),
        };
        let client = carriers::build_client(cfg, &self.shared)?;
        if let Ok(mut cache) = self.clients.lock() {
            cache.insert(row.id.clone(), (row.updated_at, client.clone()));
        }
        Ok(client)
    }
}

/// Tokens persisted encrypted on the connection row, bound to it by the AEAD's
/// associated data. Failures to persist only cost a future login, so they are logged,
/// not raised.
struct DbTokenStore {
    db: PgPool,
    crypto: Arc<Crypto>,
    lock_timeout: Duration,
    tenant_id: String,
    connection_id: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredToken {
    value: String,
    expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl TokenStore for DbTokenStore {
    async fn load(&self) -> Option<Token> {
        let mut conn = self.db.acquire().await.ok()?;
        let blob = store::connections::get_token(&mut conn, &self.tenant_id, &self.connection_id).await.ok()??;
        let plain = self.crypto.decrypt(&self.tenant_id, &self.connection_id, Purpose::Token, &blob).ok()?;
        let stored: StoredToken = serde_json::from_slice(&plain).ok()?;
        Some(Token { value: SecretString::from(stored.value), expires_at: stored.expires_at })
    }

    async fn save(&self, token: Option<&Token>) {
        let blob = token.and_then(|t| {
            let stored = StoredToken { value: t.value.expose_secret().to_owned(), expires_at: t.expires_at };
            let plain = serde_json::to_vec(&stored).ok()?;
            Some(self.crypto.encrypt(&self.tenant_id, &self.connection_id, Purpose::Token, &plain))
        });
        let result = async {
            let mut conn = self.db.acquire().await?;
            store::connections::set_token(&mut conn, &self.tenant_id, &self.connection_id, blob.as_deref()).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(connection_id = %self.connection_id, error = %e, "could not persist carrier token");
        }
    }

    async fn lock(&self) -> Option<RenewalGuard> {
        let attempt = async {
            let mut conn = self.db.acquire().await.ok()?;
            store::connections::lock_token(&mut conn, &self.connection_id).await.ok()?;
            Some(AdvisoryGuard { conn: Some(conn), connection_id: self.connection_id.clone() })
        };
        // A renewal elsewhere is bounded by the carrier timeout; never wait forever.
        match tokio::time::timeout(self.lock_timeout, attempt).await {
            Ok(Some(g)) => Some(Box::new(g)),
            _ => {
                tracing::warn!(connection_id = %self.connection_id, "token renewal lock not available; renewing without it");
                None
            }
        }
    }
}

/// Releases the advisory lock on drop, even when the holder was cancelled: the unlock
/// runs on a task, and if it cannot, the database connection is closed, which releases
/// every session lock it held.
struct AdvisoryGuard {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    connection_id: String,
}

impl Drop for AdvisoryGuard {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let id = std::mem::take(&mut self.connection_id);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if store::connections::unlock_token(&mut conn, &id).await.is_err() {
                        drop(conn.detach());
                    }
                });
            }
            Err(_) => drop(conn.detach()),
        }
    }
}
