//! docs/quality.md P5: signed webhook deliveries per second to a local receiver, drained
//! in order of due time. Run by `bench/p5.sh` (see bench/README.md).
//!
//! Per run: N events are written for S shipments of one tenant with one endpoint (the
//! receiver, an axum server in this process answering 200), then fanned out by the
//! dispatcher. Their due times are then spread at random over the past hour so the
//! order of due time differs from the order of creation. The delivery worker (the
//! production code, `webhooks::spawn`) is started and timed until every delivery is
//! `succeeded`. Reported: deliveries/s, and how far the arrival order strays from the
//! due order (max displacement, to compare with the configured concurrency).
//!
//! Usage: p5_webhooks <admin database URL> [events=20000] [runs=3] [concurrency=128]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::json;
use shipgate::app::AppState;
use shipgate::config::Config;
use shipgate::store;
use sqlx::Connection as _;
use sqlx::postgres::PgPoolOptions;

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let admin = args.get(1).cloned().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let concurrency: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(128);
    shipgate::crypto::install_tls_provider();

    // receiver: records the order webhook-ids arrive in
    let arrivals: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = arrivals.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, _body: axum::body::Bytes| {
        let rec = rec.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            if let Ok(mut a) = rec.lock() {
                a.push(id);
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let db_name = "shipgate_bench_p5";
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db_name}"))).execute(&mut conn).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&mut conn).await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
    let db = PgPoolOptions::new().max_connections(16).connect(&format!("{base}/{db_name}")).await?;
    store::MIGRATOR.run(&db).await?;

    let config = Config::from_toml_overrides(&format!(
        "master_key = \"{MASTER_KEY}\"\nwebhook_allow_networks = \"127.0.0.1/32\"\nwebhook_concurrency = {concurrency}\n\
         webhook_poll_interval_ms = 50\n"
    ))?;
    let state = AppState::new(db.clone(), config)?;
    let tenant = shipgate::ids::new_id("ten");
    let mut c = db.acquire().await?;
    store::tenants::insert_tenant(&mut c, &tenant, "bench").await?;
    let con = shipgate::ids::new_id("con");
    sqlx::query("INSERT INTO connections (tenant_id, id, carrier, name, credentials_enc, credential_fields, settings) VALUES ($1, $2, 'ecourier', 'bench', '\\x00', '{}', '{}')")
        .bind(&tenant)
        .bind(&con)
        .execute(&mut *c)
        .await?;
    // the endpoint, created the way the API does (sealed secret)
    let ep = shipgate::ids::new_id("whe");
    let (raw, _) = shipgate::webhooks::new_secret();
    let sealed = state.crypto.encrypt(&tenant, &ep, shipgate::crypto::Purpose::WebhookSecret, &raw);
    store::webhooks::insert_endpoint(
        &mut c,
        &store::webhooks::NewEndpoint {
            tenant_id: &tenant,
            id: &ep,
            url: &url,
            description: None,
            event_types: &[],
            secret_enc: &sealed,
            enabled: true,
        },
    )
    .await?;
    let shipments: Vec<String> = (0..200).map(|_| shipgate::ids::new_id("shp")).collect();
    for s in &shipments {
        sqlx::query("INSERT INTO shipments (tenant_id, id, connection_id, carrier) VALUES ($1, $2, $3, 'ecourier')")
            .bind(&tenant)
            .bind(s)
            .bind(&con)
            .execute(&mut *c)
            .await?;
    }
    drop(c);

    println!(
        "machine: {} cores shared by the worker, the receiver (same process) and Postgres; {n} events per run, concurrency {concurrency}",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0)
    );
    let mut rates = Vec::new();
    for run in 1..=runs {
        arrivals.lock().map(|mut a| a.clear()).ok();
        // write the events: 100 per transaction, round-robin over the shipments
        let mut c = db.acquire().await?;
        for chunk in 0..n.div_ceil(100) {
            #[allow(clippy::disallowed_methods)] // a benchmark's own loop: nothing cancels it
            let mut tx = c.begin().await?;
            for k in 0..100.min(n - chunk * 100) {
                let s = &shipments[(chunk * 100 + k) % shipments.len()];
                let ev = store::events::NewEvent {
                    event_type: "shipment.status_changed",
                    data: json!({"shipment": {"id": s, "status": "in_transit"}, "previous_status": "info_received"}),
                };
                store::events::emit(&mut tx, &tenant, s, &[ev]).await?;
            }
            tx.commit().await?;
        }
        let t_dispatch = Instant::now();
        while shipgate::webhooks::dispatch_once(&state).await?.events > 0 {}
        let dispatch_s = t_dispatch.elapsed().as_secs_f64();
        // spread due times over the past hour, unrelated to creation order
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = now() - random() * interval '1 hour' WHERE state = 'pending'",
        )
        .execute(&mut *c)
        .await?;
        let due_order: Vec<String> = sqlx::query_scalar(
            "SELECT event_id FROM webhook_deliveries WHERE state = 'pending' ORDER BY next_attempt_at, seq",
        )
        .fetch_all(&mut *c)
        .await?;
        let t0 = Instant::now();
        let workers = shipgate::webhooks::spawn(state.clone())?;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state <> 'succeeded'")
                .fetch_one(&mut *c)
                .await?;
            if left == 0 {
                break;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        workers.shutdown().await;
        let arrived = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
        let rank: std::collections::HashMap<&str, usize> =
            due_order.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let max_disp = arrived
            .iter()
            .enumerate()
            .filter_map(|(i, id)| rank.get(id.as_str()).map(|r| i.abs_diff(*r)))
            .max()
            .unwrap_or(0);
        let rate = due_order.len() as f64 / secs;
        println!(
            "run {run}: dispatched {} events in {dispatch_s:.2} s; delivered {} signed webhooks in {secs:.2} s = {rate:.0}/s; \
             {} received; arrival order vs due order: max displacement {max_disp}",
            n,
            due_order.len(),
            arrived.len()
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("P5 median of {runs} runs: {:.0} signed deliveries/s (bar >= 2000)", rates[rates.len() / 2]);
    Ok(())
}
