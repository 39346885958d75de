//! Most-recently-used connections for the request paths that run one or two statements
//! (a read, a booking's two writes, the API-key and connection lookups).
//!
//! sqlx's pool hands out its idle connections first in, first out, and sends every
//! connection given back a `Sync` and waits for the server's `ReadyForQuery` before it
//! is idle again (sqlx-core 0.9 `pool/connection.rs`, `return_to_pool`: "test the
//! connection on-release"; sqlx-postgres `ping` is `write_sync` + `wait_until_ready`).
//! On a quiet gateway the first rule sends each request to the backend that has waited
//! longest, so every statement runs in a process whose caches the other 31 evicted:
//! measured on the bench machine, a booking's two statements took 1.09 ms of Postgres
//! execution through a pool of 32 against 0.53 ms through a pool of 2 (issue 13, P3).
//! The second rule is one more round trip per use, on both sides.
//!
//! This keeps its own stack of connections given back by the paths that use it and hands
//! out the most recent first, with no extra round trip. These paths hold at most half
//! the pool between them (a semaphore): the other half always stays with sqlx for the
//! job worker, the webhook dispatcher and the inbound group commit, so nothing waiting
//! on the pool is starved by connections parked here. Only a use that ended cleanly
//! puts its connection back ([`WarmConn::release`]): one dropped without it (an error,
//! a cancelled request whose statement may still be running) goes back to sqlx, whose
//! on-release check restores or closes it, as before. Whatever has been parked longer
//! than [`PARK_FOR`] is given back to the pool (on the next use, and by a sweep every
//! [`PARK_FOR`]), so a quiet gateway holds nothing here for long.
//!
//! Measured on the bench machine (issue 13, bench/README.md): a booking's added latency
//! over its floor went from 1.0 to 0.55 ms; `GET /v1/shipments/{id}` at 64 connections
//! from ~8.5k to 11–13k requests/s.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may wait in the stack before it goes back to the pool.
pub const PARK_FOR: Duration = Duration::from_millis(200);

struct Stack {
    pool: PgPool,
    /// Most recent last; each with the moment it was parked.
    parked: Mutex<Vec<(Instant, PoolConnection<Postgres>)>>,
    /// One per connection these paths may hold at once (parked or in use).
    permits: Arc<Semaphore>,
}

/// The parked connections older than [`PARK_FOR`], taken out (the oldest come first).
fn expired(parked: &mut Vec<(Instant, PoolConnection<Postgres>)>) -> Vec<(Instant, PoolConnection<Postgres>)> {
    let young = parked.iter().position(|(at, _)| at.elapsed() < PARK_FOR).unwrap_or(parked.len());
    parked.drain(..young).collect()
}

impl Stack {
    /// The most recently parked connection, if any; whatever has been parked longer than
    /// [`PARK_FOR`] goes back to the pool on the way (one lock for both).
    fn take(&self) -> Option<PoolConnection<Postgres>> {
        let (newest, old) = {
            let mut p = self.parked.lock().ok()?;
            let old = expired(&mut p);
            (p.pop().map(|(_, c)| c), old)
        };
        drop(old); // outside the lock: sqlx's release spawns its check
        newest
    }

    /// Give back to the pool whatever has been parked longer than [`PARK_FOR`] (the sweep).
    fn expire(&self) {
        let old = self.parked.lock().map(|mut p| expired(&mut p)).unwrap_or_default();
        drop(old);
    }
}

/// The stack, held by `AppState`; cheap to clone.
#[derive(Clone)]
pub struct Warm(Arc<Stack>);

impl Warm {
    /// Half the pool's connections at most (at least one). Starts the sweep when called
    /// inside a Tokio runtime (the sweep ends with the last clone).
    pub fn new(pool: PgPool) -> Warm {
        let cap = (pool.options().get_max_connections() as usize / 2).max(1);
        Warm::with_limit(pool, cap)
    }

    /// At most `cap` connections (at least one), for one kind of user with a known number
    /// of tasks: the inbound committers keep theirs here (`service::inbound::batch`).
    pub fn with_limit(pool: PgPool, cap: usize) -> Warm {
        let cap = cap.max(1);
        let stack = Arc::new(Stack { pool, parked: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(cap)) });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Stack> = Arc::downgrade(&stack);
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(PARK_FOR).await;
                    match weak.upgrade() {
                        Some(s) => s.expire(),
                        None => break,
                    }
                }
            });
        }
        Warm(stack)
    }

    /// The most recently parked connection, else one from the pool; waits at most the
    /// pool's acquire timeout for a turn, like the pool itself.
    pub async fn acquire(&self) -> Result<WarmConn, sqlx::Error> {
        let wait = self.0.pool.options().get_acquire_timeout();
        let permit = match tokio::time::timeout(wait, self.0.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let conn = match self.0.take() {
            Some(c) => c,
            None => self.0.pool.acquire().await?,
        };
        Ok(WarmConn { conn: Some(conn), home: self.0.clone(), _turn: permit })
    }

    /// Run `work` on a connection from [`acquire`](Warm::acquire), which is parked again
    /// only if `work` succeeded; an error (or a cancelled future) leaves it to sqlx's check.
    pub async fn with<T, E: From<sqlx::Error>>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.acquire().await?;
        let out = work(&mut conn).await?;
        conn.release();
        Ok(out)
    }

    /// How many connections are parked (tests).
    pub fn parked(&self) -> usize {
        self.0.parked.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// A connection from [`Warm::acquire`]; use it as a `PgConnection`, then call
/// [`release`](WarmConn::release) when the work ended cleanly. Dropping it otherwise
/// returns it to sqlx's pool, which checks it.
pub struct WarmConn {
    conn: Option<PoolConnection<Postgres>>,
    home: Arc<Stack>,
    /// Dropped after `conn` (field order): the turn ends once the connection is home.
    _turn: OwnedSemaphorePermit,
}

impl WarmConn {
    /// Park the connection for the next user (or give it to the pool once the pool is
    /// closing).
    pub fn release(mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.home.pool.is_closed()
            && let Ok(mut p) = self.home.parked.lock()
        {
            p.push((Instant::now(), conn));
        }
        // Not parked: dropped here, after the lock, back to sqlx's pool.
    }
}

impl std::ops::Deref for WarmConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Some until `release`, which consumes self.
        self.conn.as_deref().expect("connection present until released")
    }
}

impl std::ops::DerefMut for WarmConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().expect("connection present until released")
    }
}
