//! All SQL lives here: one module per table group, checked at compile time
//! (`query!`/`query_as!`, offline data in `.sqlx/`). Functions take `&mut PgConnection`
//! so the caller owns the transaction (zero2prod, hook0).

pub mod carriers;
pub mod connections;
pub mod console;
pub mod documents;
pub mod events;
pub mod exchanges;
pub mod idempotency;
pub mod inbound;
pub mod inbound_log;
pub mod jobs;
pub mod overview;
pub mod partitions;
pub mod reconciliations;
pub mod scan_groups;
pub mod shipments;
pub mod sinks;
pub mod tenants;
pub mod tracking;
pub mod types;
pub mod warm;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};
use std::str::FromStr as _;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Who changed a shipment (its history's actor).
#[derive(Debug, Clone)]
pub enum Actor {
    ApiKey(String),
    CarrierPush,
    Poller,
    System,
    /// The carrier, or a named person at the carrier (eCMR history `by`).
    Carrier(Option<String>),
    /// A reconciliation with the carrier's own list (`service::reconcile`).
    Reconcile,
}

impl Actor {
    pub fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Actor::ApiKey(id) => ("api_key", Some(id.as_str())),
            Actor::CarrierPush => ("carrier_push", None),
            Actor::Poller => ("poller", None),
            Actor::System => ("system", None),
            Actor::Carrier(who) => ("carrier", who.as_deref()),
            Actor::Reconcile => ("reconcile", None),
        }
    }
}

/// A pool that fails fast when the database is away (so `/readyz` and requests answer
/// 503 quickly) and recovers by itself when it is back.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let opts = PgConnectOptions::from_str(url)?
        .log_statements(tracing::log::LevelFilter::Debug)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        // sqlx pings every connection it hands out by default: one more round trip per
        // acquire (QUALITY P3). A dead connection fails its query instead, which is
        // answered 503 like any outage, and the pool replaces it.
        .test_before_acquire(false)
        .connect_with(opts)
        .await?)
}

/// A small pool beside `main`, for one kind of user that needs session settings of its
/// own: the same server and credentials, at most `max` connections, each started with
/// `settings` (startup options, PG 15 docs 34.1.2 `options`: no round trip, and they
/// stay with these connections only). It connects lazily, and is closed when its last
/// handle is dropped. Its connections count against the server's `max_connections`
/// beside `main`'s (docs/operations.md).
pub fn side_pool(main: &PgPool, max: u32, settings: &[(&str, &str)]) -> PgPool {
    let opts = (*main.connect_options()).clone().options(settings.iter().copied());
    PgPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(0)
        .acquire_timeout(main.options().get_acquire_timeout())
        .test_before_acquire(false)
        .connect_lazy_with(opts)
}

/// Begin a transaction on a pooled connection, so that no cancellation can leave the
/// connection inside a transaction nobody will end. Every transaction the gateway opens
/// on the pool goes through here (`clippy.toml` forbids `Pool::begin`).
///
/// sqlx 0.9.0 writes `BEGIN` and counts the transaction only once the server has
/// answered (sqlx-postgres `PgTransactionManager::begin`: `transaction_depth += 1`
/// after `wait_until_ready`), and its guard for a cancelled wait rolls back only when
/// that count is already above zero. A future dropped in that wait (a client that hung
/// up, an aborted task, a timeout) therefore gives the connection back to the pool with
/// the server inside a transaction sqlx does not know of: the next user's statements run
/// in it and are never committed, and it holds back every snapshot, which stalls the
/// webhook dispatcher (it fans out only events below the oldest one). Known upstream as
/// transact-rs/sqlx#4393 (fixed after 0.9.0, in no release yet); reproduced here by
/// `tests/api/transactions.rs`, and seen as a stalled reconciliation whose worker was
/// aborted mid-page.
///
/// Here the start runs in its own task, which finishes whatever happens to the caller:
/// a transaction begun for a caller that is gone is dropped there, which sqlx rolls back
/// the ordinary way. The cost is one task spawn per transaction.
pub async fn begin(pool: &PgPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let pool = pool.clone();
    #[allow(clippy::disallowed_methods)] // the one place allowed to call it
    let started = tokio::spawn(async move { pool.begin().await });
    match started.await {
        Ok(begun) => begun,
        // A panic inside the start goes on in the caller, as it would have inline.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(e) => Err(sqlx::Error::Io(std::io::Error::other(e))),
    }
}
