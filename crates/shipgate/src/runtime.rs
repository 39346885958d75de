//! What runs in a serving process besides the request handlers, started by the command
//! that runs them (`shipgate serve`, `shipgate sandbox`): the background workers (job
//! queue, webhook dispatcher and delivery worker, tracking engine), the housekeeping,
//! and the server's life cycle (serve until SIGTERM/SIGINT, then drain the requests and
//! the workers). Above the workers and the HTTP layer, so that `app.rs` holds the
//! state only and imports neither.

use std::time::Duration;

use crate::app::AppState;
use crate::{console, http, service, store};

/// The whole application: the API (`http`) and the ops console (`console`, under
/// `/console`), two front ends on one service layer, assembled here so neither names
/// the other.
pub fn router(state: AppState) -> axum::Router {
    http::router(state.clone()).merge(console::router(state))
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

/// Housekeeping that must not depend on any one instance: purge expired idempotency
/// keys and documents past their retention (plain DELETEs), and keep the monthly
/// partitions (`service::retention`: next months created, months past their retention
/// dropped, under a lock per table). Safe to run on every instance.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            // Failed-auth counts end with their window even when no request comes by.
            state.key_cache.failures.sweep();
            state.inbound.failures.sweep();
            let Ok(mut conn) = state.db.acquire().await else { continue };
            if let Err(e) = store::idempotency::purge_expired(&mut conn).await {
                tracing::warn!(error = %e, "idempotency purge failed");
            }
            if let Err(e) = store::console::purge_ended(&mut conn).await {
                tracing::warn!(error = %e, "console session purge failed");
            }
            if let Err(e) = store::inbound_log::purge_refusals(&mut conn).await {
                tracing::warn!(error = %e, "inbound refusal purge failed");
            }
            partition_maintenance(&state).await;
            let days = i32::try_from(state.config.document_retention_days).unwrap_or(i32::MAX);
            match store::documents::purge_older_than(&mut conn, days).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "documents past their retention purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "document purge failed"),
            }
        }
    })
}

/// One round of partition maintenance, logged: what was created and dropped, and rows
/// that no month holds (gauge `shipgate_partition_default_rows`).
async fn partition_maintenance(state: &AppState) {
    for r in service::retention::maintain(&state.db, &state.config, chrono::Utc::now()).await {
        metrics::gauge!("shipgate_partition_default_rows", "table" => r.table).set(r.default_rows as f64);
        if !r.created.is_empty() || !r.dropped.is_empty() {
            tracing::info!(table = r.table, created = ?r.created, dropped = ?r.dropped,
                deliveries_deleted = r.deliveries_deleted, retention_days = r.retention_days, "partitions maintained");
        }
        if r.default_rows > 0 {
            tracing::warn!(
                table = r.table,
                rows = r.default_rows,
                past_retention = r.default_rows_past_retention,
                "rows in the default partition: no month holds them, so retention never drops them \
                 (docs/operations.md \"Housekeeping\")"
            );
        }
        for e in &r.errors {
            tracing::warn!(table = r.table, error = %e, "partition maintenance failed; the next round tries again");
        }
    }
}

/// The background workers of one instance and the switch that stops them.
pub struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    drain: Duration,
    /// The instance's limits on its HTTP clients, carried here from the configuration
    /// so [`serve`] needs nothing else.
    limits: crate::server::ServeLimits,
}

impl Workers {
    /// A receiver that turns true when the workers must stop claiming work.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Add a worker task to be awaited on shutdown.
    pub fn push(&mut self, handle: tokio::task::JoinHandle<()>) {
        self.handles.push(handle);
    }

    /// Stop claiming and wait (up to the drain time) for in-flight work to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.handles);
        if tokio::time::timeout(self.drain, all).await.is_err() {
            tracing::warn!("workers did not drain in time; their leased jobs will be taken over after the lease");
        }
    }
}

/// Start the background workers (when enabled): the job queue worker and the periodic
/// jobs it runs.
pub fn spawn_workers(state: &AppState) -> Workers {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut workers = Workers {
        stop,
        handles: Vec::new(),
        drain: state.config.shutdown_drain,
        limits: crate::server::ServeLimits::from_config(&state.config),
    };
    if state.config.workers_enabled {
        let st = state.clone();
        workers.push(tokio::spawn(async move {
            if let Err(e) = crate::jobs::kinds::ensure_periodic(&st).await {
                tracing::warn!(error = %e, "could not schedule the periodic jobs; the next start will");
            }
            let cfg = crate::jobs::WorkerConfig::from_state(&st);
            crate::jobs::run_worker(st, cfg, rx).await;
        }));
        match crate::webhooks::spawn(state.clone()) {
            Ok(webhooks) => {
                // The webhook workers drain with the others when the switch flips.
                let mut stop = workers.subscribe();
                workers.push(tokio::spawn(async move {
                    let _ = stop.wait_for(|s| *s).await;
                    webhooks.shutdown().await;
                }));
            }
            Err(e) => tracing::error!(error = %e, "webhook workers could not start"),
        }
        if state.config.tracking.enabled {
            // Stops claiming at shutdown; refreshes in flight finish (drained below).
            workers.push(crate::tracking::spawn(state.clone(), workers.subscribe()));
        }
        tracing::info!("background workers started");
    }
    workers
}

/// Serve `router` on `listener` until shutdown, then drain the workers. The server
/// bounds slow and greedy clients (src/server.rs); the client address it records keys
/// the failed-authentication throttles (src/http/auth.rs).
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router, workers: Workers) -> anyhow::Result<()> {
    let stop = workers.stop.clone();
    let limits = workers.limits.clone();
    crate::server::serve(listener, router, limits, async move {
        shutdown_signal().await;
        // Workers stop claiming while the server drains its requests.
        let _ = stop.send(true);
    })
    .await?;
    workers.shutdown().await;
    Ok(())
}
