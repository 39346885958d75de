//! `spawn_app()`: one isolated gateway per test (zero2prod's harness, adapted).
//!
//! Postgres: `DATABASE_URL` when it answers, else the machine's default
//! `postgres://postgres@127.0.0.1:5432/postgres`, else a private server started from
//! the installed binaries under the target dir (shared by all test processes).

use std::str::FromStr as _;
use std::time::Duration;

use pgembed::{Options, PrivatePostgres};
use serde_json::{Value, json};
use shipgate::app::AppState;
use shipgate::config::Config;
use sims::ecourier::{EcourierSim, EcourierSimConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};
use tokio::sync::OnceCell;

pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // base64 of 32 bytes, tests only

static ADMIN: OnceCell<PgConnectOptions> = OnceCell::const_new();

async fn reachable(opts: &PgConnectOptions) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(3), opts.connect()).await, Ok(Ok(_)))
}

async fn admin_options() -> PgConnectOptions {
    ADMIN
        .get_or_init(|| async {
            let candidates =
                [std::env::var("DATABASE_URL").ok(), Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned())];
            for url in candidates.into_iter().flatten() {
                if let Ok(opts) = PgConnectOptions::from_str(&url)
                    && reachable(&opts).await
                {
                    return opts.log_statements(tracing::log::LevelFilter::Trace);
                }
            }
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shipgate-test-pg");
            let pg = tokio::task::spawn_blocking(move || PrivatePostgres::ensure(&Options { dir, durable: false }))
                .await
                .expect("join")
                .expect("no Postgres reachable and a private one could not be started");
            PgConnectOptions::from_str(&pg.url("postgres")).expect("url")
        })
        .await
        .clone()
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub sim: EcourierSim,
    pub ecomdash: sims::ecomdash::EcomdashSim,
    pub ecmr: sims::ecmr::EcmrSim,
    pub aftership: sims::aftership::AftershipSim,
    pub db: PgPool,
    pub state: AppState,
    /// Writes what the gateway sent the AfterShip and ecomdash simulators, for the
    /// carriers' own judges (`contract/run.sh`), when the test app is dropped.
    #[allow(dead_code, reason = "it works in its Drop")]
    pub contract_log: ContractLog,
    /// Dropped last: drops the database.
    pub database: TestDatabase,
}

/// The directory named by this variable receives, as each test app is dropped, the
/// AfterShip simulator's request log as `aftership-<uuid>.jsonl` (one `{"method", "path",
/// "query", "body"}` per line, the path relative to the simulator's mount) and the
/// ecomdash simulator's as `ecomdash-<uuid>.jsonl` (one request body per line).
/// `contract/run.sh` has the official AfterShip SDK and ecomdash's JSON Schema judge them.
pub const CONTRACT_LOG_DIR_VAR: &str = "SHIPGATE_CONTRACT_LOG_DIR";

pub struct ContractLog {
    pub aftership: sims::aftership::AftershipSim,
    pub ecomdash: sims::ecomdash::EcomdashSim,
}

impl ContractLog {
    fn write(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let id = uuid::Uuid::new_v4().simple();
        let aftership: Vec<Value> = self
            .aftership
            .requests()
            .into_iter()
            .map(|r| json!({"method": r.method, "path": r.path, "query": r.query, "body": r.body}))
            .collect();
        let ecomdash: Vec<Value> = self.ecomdash.requests().into_iter().map(|r| r.body).collect();
        for (carrier, lines) in [("aftership", aftership), ("ecomdash", ecomdash)] {
            if lines.is_empty() {
                continue;
            }
            let mut text = String::new();
            for line in lines {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            std::fs::write(dir.join(format!("{carrier}-{id}.jsonl")), text)?;
        }
        Ok(())
    }
}

impl Drop for ContractLog {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os(CONTRACT_LOG_DIR_VAR) else { return };
        // Never panic here: this may run while a failed test unwinds.
        if let Err(e) = self.write(std::path::Path::new(&dir)) {
            eprintln!("the simulators' request logs could not be written to {}: {e}", dir.to_string_lossy());
        }
    }
}

/// A test's own database, dropped when the test ends — passed, failed or panicked
/// (the guard drops while the panic unwinds) — so `cargo test` leaves nothing on the
/// server. `.ci/run` still sweeps `sgt_%` leftovers of killed runs.
pub struct TestDatabase {
    pub name: String,
    admin: PgConnectOptions,
    pool: Option<PgPool>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Close the test's pool first: `close()` marks it closed at once, so nothing of
        // the test (server task, workers) opens a connection again. Its future would
        // need the test's runtime, which is busy running this drop.
        if let Some(pool) = self.pool.take() {
            drop(pool.close());
        }
        let (name, admin) = (std::mem::take(&mut self.name), self.admin.clone());
        // Drop cannot await: a thread with its own runtime runs the DROP. FORCE ends the
        // connections the test's server and pool still hold (Postgres 13+).
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = admin.connect().await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let done = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok();
                conn.close().await.ok();
                done.map(|_| name)
            })
        })
        .join();
        // Never panic here: this may run while a failed test unwinds.
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("a test database could not be dropped; .ci/run sweeps sgt_% leftovers");
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

/// An app with extra config (TOML) on top of the test defaults.
pub async fn spawn_app_with(extra_config: &str) -> TestApp {
    shipgate::crypto::install_tls_provider();
    let admin = admin_options().await;
    let name = format!("sgt_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    // From here on the database goes away with the test, however the test ends.
    let mut database = TestDatabase { name: name.clone(), admin: admin.clone(), pool: None };
    let db = PgPoolOptions::new()
        .max_connections(10)
        .idle_timeout(Duration::from_secs(5))
        .connect_with(admin.clone().database(&name))
        .await
        .expect("test database");
    database.pool = Some(db.clone());
    shipgate::store::MIGRATOR.run(&db).await.expect("migrations");

    // Tests drive jobs themselves unless they ask for this instance's workers.
    let workers = if extra_config.contains("workers_enabled") { "" } else { "workers_enabled = false\n" };
    // The simulators are mounted on the gateway's own server, so its carrier calls are
    // connections from 127.0.0.1 too, beside the test's own.
    let cap =
        if extra_config.contains("max_connections_per_client") { "" } else { "max_connections_per_client = 4096\n" };
    let config = Config::from_toml_overrides(&format!(
        "master_key = \"{MASTER_KEY}\"\napi_key_env = \"test\"\ncarrier_request_timeout_ms = 3000\n{workers}{cap}{extra_config}"
    ))
    .expect("config");
    let state = AppState::new(db.clone(), config).expect("state");
    let sim = EcourierSim::new(EcourierSimConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let ecomdash = sims::ecomdash::EcomdashSim::default();
    let ecmr = sims::ecmr::EcmrSim::default();
    let aftership = sims::aftership::AftershipSim::default();
    let router = shipgate::runtime::router(state.clone())
        .nest(shipgate::sandbox::ECOURIER_MOUNT, sim.router())
        .nest(shipgate::sandbox::ECOMDASH_MOUNT, ecomdash.router())
        .nest(shipgate::sandbox::ECMR_MOUNT, ecmr.router())
        .nest(shipgate::sandbox::AFTERSHIP_MOUNT, aftership.router());
    // The production server loop (timeouts, per-client limits, client addresses).
    let limits = shipgate::server::ServeLimits::from_config(&state.config);
    tokio::spawn(shipgate::server::serve(listener, router, limits, std::future::pending()));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let (tenant_id, key) = new_tenant(&state, "Tenant A").await;
    let contract_log = ContractLog { aftership: aftership.clone(), ecomdash: ecomdash.clone() };
    let mut app = TestApp {
        base,
        http,
        key,
        tenant_id,
        connection_id: String::new(),
        sim,
        ecomdash,
        ecmr,
        contract_log,
        aftership,
        db,
        state,
        database,
    };
    app.connection_id = app.create_ecourier_connection(&app.key.clone()).await;
    app
}

/// A tenant with an API key, created the way the CLI does.
pub async fn new_tenant(state: &AppState, name: &str) -> (String, String) {
    let tenant_id = shipgate::ids::new_id("ten");
    let mut conn = state.db.acquire().await.expect("conn");
    shipgate::store::tenants::insert_tenant(&mut conn, &tenant_id, name).await.expect("tenant");
    let (_, key) = shipgate::service::auth::create_key(&state.db, &tenant_id, "test", None).await.expect("key");
    (tenant_id, secrecy::ExposeSecret::expose_secret(&key).to_owned())
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.bytes)))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
    /// Assert a problem+json body with this status and code; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "status; body: {body}");
        assert_eq!(body["code"], code, "code; body: {body}");
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"));
        assert_eq!(body["status"], status);
        assert!(body["request_id"].is_string(), "request_id in {body}");
        body
    }

    /// Assert 202 Accepted (kept pending, booked later by a job); returns the shipment.
    #[track_caller]
    pub fn accepted(&self) -> Value {
        let body = self.json();
        assert_eq!(self.status, 202, "status; body: {body}");
        assert_eq!(body["booking"]["state"], "pending", "{body}");
        body
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_str(method).expect("method");
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        Resp { status, headers, bytes }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, Some(&self.key.clone()), None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(&self.key.clone()), Some(body), &[]).await
    }

    pub async fn create_ecourier_connection(&self, key: &str) -> String {
        let body = json!({
            "carrier": "ecourier",
            "name": "e-Courier sim",
            "base_url": format!("{}{}", self.base, shipgate::sandbox::ECOURIER_MOUNT),
            "credentials": {"website": "demo", "username": "demo", "password": "demo-pass"},
            "settings": {"customer_code": "DEMO", "utc_offset": "+00:00"}
        });
        let r = self.request("POST", "/v1/connections", Some(key), Some(&body), &[]).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()["id"].as_str().expect("id").to_owned()
    }

    pub async fn create_connection(&self, body: Value) -> String {
        let r = self.post("/v1/connections", &body).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()["id"].as_str().expect("id").to_owned()
    }

    pub async fn create_ecmr_connection(&self) -> String {
        self.create_connection(json!({
            "carrier": "ecmr", "name": "eCMR sim", "base_url": format!("{}{}", self.base, shipgate::sandbox::ECMR_MOUNT),
            "credentials": {"organization_id": "org-demo", "api_token": "token-demo"}
        }))
        .await
    }

    pub async fn create_aftership_connection(&self) -> String {
        self.create_connection(json!({
            "carrier": "aftership", "name": "AfterShip sim", "base_url": self.aftership_base_url(),
            "credentials": {"api_key": "as-demo-key"}
        }))
        .await
    }

    pub async fn create_ecomdash_connection(&self) -> String {
        let body = json!({
            "carrier": "ecomdash",
            "name": "ecomdash sim",
            "base_url": format!("{}{}", self.base, shipgate::sandbox::ECOMDASH_MOUNT),
            "credentials": {"subscription_key": "sub-demo", "integration_key": "ecd-demo"}
        });
        let r = self.post("/v1/connections", &body).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// The AfterShip simulator serves `/tracking/2024-04/...` under its mount point.
    pub fn aftership_base_url(&self) -> String {
        format!("{}{}{}", self.base, shipgate::sandbox::AFTERSHIP_MOUNT, shipgate::sandbox::AFTERSHIP_API)
    }

    pub fn shipment_body(&self, reference: &str) -> Value {
        shipment_body(&self.connection_id, reference)
    }

    /// Book one shipment; asserts 201 and returns its body.
    pub async fn book(&self, reference: &str) -> Value {
        let r = self.post("/v1/shipments", &self.shipment_body(reference)).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()
    }

    /// Make every queued job due now and run them all once, in this task (as a worker would).
    pub async fn run_due_jobs(&self) -> usize {
        sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'queued'").execute(&self.db).await.expect("jobs due");
        shipgate::jobs::run_due(&self.state, shipgate::jobs::kinds::ALL).await.expect("run jobs")
    }

    pub fn sim_calls(&self, method: &str) -> u64 {
        self.sim.stats().calls.get(method).copied().unwrap_or(0)
    }
}

pub fn shipment_body(connection_id: &str, reference: &str) -> Value {
    json!({
        "connection_id": connection_id,
        "reference": reference,
        "service": "Route",
        "stops": [
            {"sequence": 1, "type": "pickup", "name": "James Madison",
             "address": {"line1": "2251 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
             "phone": "3015551212", "scheduled_at": "2026-11-23T06:00:00-05:00"},
            {"sequence": 2, "type": "delivery", "name": "Bryan Moore",
             "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "state": "FL", "postal_code": "32804", "country": "US"},
             "scheduled_at": "2026-11-23T17:00:00-05:00"}
        ],
        "parcels": [
            {"reference": "test1234barcode", "quantity": 1, "weight": {"value": 2.5, "unit": "lb"}},
            {"reference": "test1235barcode", "quantity": 5, "description": "Boxes"}
        ],
        "declared_value": {"amount": "120.00", "currency": "USD"},
        "metadata": {"erp_order": "4711"}
    })
}
