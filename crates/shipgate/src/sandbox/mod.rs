//! `shipgate sandbox`: the whole product on one machine with no carrier accounts.
//! Uses `DATABASE_URL` or a private Postgres under `<data_dir>/pg`, mounts the carrier
//! simulators under `/sim/<carrier>`, creates a demo tenant with a connection to each
//! available simulator, and prints an API key, a curl that books a shipment, and the
//! Swagger UI address.
//!
//! The database outlives a restart, so the simulators must too (issue 9: old demo
//! shipments failed to refresh with "Order Not Found" once the e-Courier simulator had
//! forgotten them): each simulator's state is imported at start from
//! `<data_dir>/sims/<carrier>.json` when present, and saved there, atomically (a temp
//! file renamed over the old one), a few seconds after it changed ([`SAVE_QUIET`]) and at
//! shutdown.

// The simulators written from the carriers' own documents (`crates/sims`), never from
// the adapters: where an adapter misreads a contract, a simulator of the same hands would
// agree with it and prove nothing (issue 8).
pub use sims::{aftership, ecmr, ecomdash, ecomexpress, ecourier};

mod pod_demo;

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::config::Config;
use crate::crypto::Purpose;
use crate::{http, ids, store};
use pgembed::{Options, PrivatePostgres};

/// Where the e-Courier simulator is mounted.
pub const ECOURIER_MOUNT: &str = "/sim/ecourier";
/// Where the eCMR.services simulator is mounted (its API is under `{mount}/api/...`).
pub const ECMR_MOUNT: &str = "/sim/ecmr";
/// Where the AfterShip simulator is mounted. It serves `{mount}/tracking/2024-04/...`, so
/// a connection's base URL is [`AFTERSHIP_API`] under the mount.
pub const AFTERSHIP_MOUNT: &str = "/sim/aftership";
/// The AfterShip API version path under [`AFTERSHIP_MOUNT`]: `/tracking/2024-04`.
pub const AFTERSHIP_API: &str = "/tracking/2024-04";
/// Where the ecomdash simulator is mounted (its call is `{mount}/api/Shipments/...`).
pub const ECOMDASH_MOUNT: &str = "/sim/ecomdash";

/// A demo tenant with one key and a connection to each carrier simulator.
pub struct Demo {
    pub tenant_id: String,
    pub api_key: SecretString,
    pub ecourier_connection_id: String,
    pub ecmr_connection_id: String,
    pub aftership_connection_id: String,
    pub ecomdash_connection_id: String,
    /// Inbound-only: Ecom Express pushes to `/v1/inbound/ecomexpress/{id}` with these.
    pub ecomexpress_connection_id: String,
    pub ecomexpress_username: String,
    pub ecomexpress_password: SecretString,
}

async fn insert_connection(
    state: &AppState,
    tenant_id: &str,
    carrier: &str,
    name: &str,
    base_url: &str,
    creds: &[(&str, &str)],
    settings: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<String> {
    let creds: BTreeMap<String, String> = creds.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let id = ids::new_id("con");
    let enc = state.crypto.encrypt(tenant_id, &id, Purpose::Credentials, &serde_json::to_vec(&creds)?);
    let fields: Vec<String> = creds.keys().cloned().collect();
    let mut conn = state.db.acquire().await?;
    store::connections::insert(
        &mut conn,
        &store::connections::NewConnection {
            tenant_id,
            id: &id,
            carrier,
            name,
            base_url: Some(base_url),
            credentials_enc: &enc,
            credential_fields: &fields,
            settings: &settings,
        },
    )
    .await?;
    Ok(id)
}

/// `base` is where the simulators are mounted (`{base}/sim/<carrier>`).
pub async fn create_demo(state: &AppState, name: &str, base: &str) -> anyhow::Result<Demo> {
    let tenant_id = ids::new_id("ten");
    let mut conn = state.db.acquire().await?;
    store::tenants::insert_tenant(&mut conn, &tenant_id, name).await?;
    drop(conn);
    let (_, api_key) = crate::service::auth::create_key(&state.db, &tenant_id, "test", Some("sandbox")).await?;
    let ec = ecourier::EcourierSimConfig::default();
    let account = ec.accounts.first().ok_or_else(|| anyhow::anyhow!("simulator has no account"))?;
    let mut settings = serde_json::Map::new();
    settings.insert("customer_code".into(), account.customer_code.clone().into());
    let ecourier_connection_id = insert_connection(
        state,
        &tenant_id,
        "ecourier",
        "e-Courier simulator",
        &format!("{base}{ECOURIER_MOUNT}"),
        &[("website", &account.website), ("username", &account.username), ("password", &account.password)],
        settings,
    )
    .await?;
    let cmr = ecmr::EcmrSimConfig::default();
    let org = cmr.organizations.first().ok_or_else(|| anyhow::anyhow!("simulator has no organisation"))?;
    let ecmr_connection_id = insert_connection(
        state,
        &tenant_id,
        "ecmr",
        "eCMR.services simulator",
        &format!("{base}{ECMR_MOUNT}"),
        &[("organization_id", &org.organization_id), ("api_token", &org.api_token)],
        serde_json::Map::new(),
    )
    .await?;
    let af = aftership::AftershipSimConfig::default();
    let key = af.api_keys.first().ok_or_else(|| anyhow::anyhow!("simulator has no key"))?;
    let aftership_connection_id = insert_connection(
        state,
        &tenant_id,
        "aftership",
        "AfterShip simulator",
        &format!("{base}{AFTERSHIP_MOUNT}{AFTERSHIP_API}"),
        &[("api_key", key)],
        serde_json::Map::new(),
    )
    .await?;
    let ed = ecomdash::EcomdashSimConfig::default();
    let (sub, ecd) = (
        ed.subscription_keys.first().ok_or_else(|| anyhow::anyhow!("no key"))?,
        ed.integration_keys.first().ok_or_else(|| anyhow::anyhow!("no key"))?,
    );
    let ecomdash_connection_id = insert_connection(
        state,
        &tenant_id,
        "ecomdash",
        "ecomdash simulator",
        &format!("{base}{ECOMDASH_MOUNT}"),
        &[("subscription_key", sub), ("integration_key", ecd)],
        serde_json::Map::new(),
    )
    .await?;
    let generated = crate::carriers::ecomexpress::generate_credentials();
    let (ecom_user, ecom_password) = (generated["username"].clone(), generated["password"].clone());
    let ecom_creds = BTreeMap::from([("username", ecom_user.as_str()), ("password", ecom_password.as_str())]);
    let ecomexpress_connection_id = ids::new_id("con");
    let enc = state.crypto.encrypt(
        &tenant_id,
        &ecomexpress_connection_id,
        Purpose::Credentials,
        &serde_json::to_vec(&ecom_creds)?,
    );
    let mut conn = state.db.acquire().await?;
    store::connections::insert(
        &mut conn,
        &store::connections::NewConnection {
            tenant_id: &tenant_id,
            id: &ecomexpress_connection_id,
            carrier: "ecomexpress",
            name: "Ecom Express pushes",
            base_url: None,
            credentials_enc: &enc,
            credential_fields: &["password".to_owned(), "username".to_owned()],
            settings: &serde_json::Map::new(),
        },
    )
    .await?;
    Ok(Demo {
        tenant_id,
        api_key,
        ecourier_connection_id,
        ecmr_connection_id,
        aftership_connection_id,
        ecomdash_connection_id,
        ecomexpress_connection_id,
        ecomexpress_username: ecom_user,
        ecomexpress_password: SecretString::from(ecom_password),
    })
}

/// Every simulator, mounted under `/sim/<carrier>` of `router`. Cheap to clone (each
/// simulator is a handle on shared state).
#[derive(Clone)]
pub struct Simulators {
    pub ecourier: ecourier::EcourierSim,
    pub ecmr: ecmr::EcmrSim,
    pub aftership: aftership::AftershipSim,
    pub ecomdash: ecomdash::EcomdashSim,
    /// Which simulators got a request that may have changed their state, and when.
    activity: std::sync::Arc<Activity>,
}

impl Simulators {
    pub fn new() -> Simulators {
        Simulators {
            ecourier: ecourier::EcourierSim::new(Default::default()),
            ecmr: ecmr::EcmrSim::new(Default::default()),
            aftership: aftership::AftershipSim::new(Default::default()),
            ecomdash: ecomdash::EcomdashSim::new(Default::default()),
            activity: Default::default(),
        }
    }

    /// Each simulator under its mount point, noting the requests that may change its state.
    pub fn mount(&self, router: axum::Router) -> axum::Router {
        router
            .nest(ECOURIER_MOUNT, self.watched("ecourier", self.ecourier.router()))
            .nest(ECMR_MOUNT, self.watched("ecmr", self.ecmr.router()))
            .nest(AFTERSHIP_MOUNT, self.watched("aftership", self.aftership.router()))
            .nest(ECOMDASH_MOUNT, self.watched("ecomdash", self.ecomdash.router()))
    }

    fn watched(&self, carrier: &'static str, router: axum::Router) -> axum::Router {
        let activity = self.activity.clone();
        router.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            if may_change(carrier, request.method(), request.uri().path()) {
                activity.touch(carrier, std::time::Instant::now());
            }
            next.run(request)
        }))
    }
}

impl Default for Simulators {
    fn default() -> Self {
        Simulators::new()
    }
}

/// Whether a request to a simulator may change what it exports. Reads never do: the
/// e-Courier simulator's GetJsonOrder, QuoteOrder and RefreshGUID (which only renews a
/// session), every other carrier's GETs, and the control API's GETs.
fn may_change(carrier: &str, method: &axum::http::Method, path: &str) -> bool {
    let read = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
    if path.contains("/_sim/") || carrier != "ecourier" {
        return !read;
    }
    path.ends_with("/SaveOrder") || path.ends_with("/Login")
}

/// A simulator's state is saved once no change came for [`SAVE_QUIET`], or at the latest
/// [`SAVE_MAX_DELAY`] after its first unsaved change: a busy simulator (a benchmark
/// sending thousands of orders a second) is not exported over and over while it works.
pub const SAVE_QUIET: Duration = Duration::from_secs(2);
/// See [`SAVE_QUIET`].
pub const SAVE_MAX_DELAY: Duration = Duration::from_secs(30);
/// How often the saver looks for simulators to save.
const SAVE_TICK: Duration = Duration::from_secs(1);

/// The carriers whose simulators keep state, as named in `<data_dir>/sims/<carrier>.json`.
pub const SIM_CARRIERS: [&str; 4] = ["ecourier", "ecmr", "aftership", "ecomdash"];

/// Per simulator, the first and the last change not saved yet.
#[derive(Default)]
struct Activity(std::sync::Mutex<BTreeMap<&'static str, (std::time::Instant, std::time::Instant)>>);

impl Activity {
    fn touch(&self, carrier: &'static str, at: std::time::Instant) {
        let mut changes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        changes.entry(carrier).and_modify(|(_, last)| *last = at).or_insert((at, at));
    }

    /// Whether `carrier` is due to be saved at `now`; if so, its changes count as saved
    /// from here on (a change arriving while it is written makes it due again).
    fn take_due(&self, carrier: &str, now: std::time::Instant) -> bool {
        let mut changes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = changes.get(carrier).is_some_and(|&(first, last)| {
            now.saturating_duration_since(last) >= SAVE_QUIET || now.saturating_duration_since(first) >= SAVE_MAX_DELAY
        });
        if due {
            changes.remove(carrier);
        }
        due
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

impl Simulators {
    /// One simulator's state as its `export_state` gives it.
    pub fn export_state(&self, carrier: &str) -> Option<serde_json::Value> {
        Some(match carrier {
            "ecourier" => self.ecourier.export_state(),
            "ecmr" => self.ecmr.export_state(),
            "aftership" => self.aftership.export_state(),
            "ecomdash" => self.ecomdash.export_state(),
            _ => return None,
        })
    }

    /// Replace one simulator's state with an exported one.
    pub fn import_state(&self, carrier: &str, state: serde_json::Value) -> Result<(), String> {
        match carrier {
            "ecourier" => self.ecourier.import_state(state),
            "ecmr" => self.ecmr.import_state(state),
            "aftership" => self.aftership.import_state(state),
            "ecomdash" => self.ecomdash.import_state(state),
            other => Err(format!("no simulator for {other}")),
        }
    }
}

/// A fingerprint of a simulator's state that ignores what moves without anything
/// happening: the e-Courier simulator exports how long each UserGUID has been idle.
fn fingerprint(carrier: &str, state: &serde_json::Value) -> u64 {
    let mut state = state.clone();
    if carrier == "ecourier"
        && let Some(tokens) = state.get_mut("tokens").and_then(serde_json::Value::as_array_mut)
    {
        for t in tokens.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            t.remove("idle_ms");
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.to_string().hash(&mut h);
    h.finish()
}

/// `shipgate sandbox`'s simulator state on disk: `<dir>/<carrier>.json`, one per simulator.
pub struct SimStateDir {
    dir: PathBuf,
    /// The fingerprint of what each file holds now (what was loaded or last saved).
    saved: BTreeMap<&'static str, u64>,
}

impl SimStateDir {
    pub fn new(dir: impl Into<PathBuf>) -> SimStateDir {
        SimStateDir { dir: dir.into(), saved: BTreeMap::new() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, carrier: &str) -> PathBuf {
        self.dir.join(format!("{carrier}.json"))
    }

    /// Import every state file present into `sims`; returns what happened, one line per
    /// carrier with a file. A file that cannot be read or imported is moved aside
    /// (`<carrier>.json.unreadable`) rather than overwritten by the next save.
    pub fn load(&mut self, sims: &Simulators) -> Vec<String> {
        let mut report = Vec::new();
        for carrier in SIM_CARRIERS {
            let path = self.file(carrier);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    report.push(format!("{carrier}: {} unreadable ({e}); starting empty", path.display()));
                    continue;
                }
            };
            let imported = serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|state| sims.import_state(carrier, state));
            match imported {
                Ok(()) => {
                    if let Some(state) = sims.export_state(carrier) {
                        self.saved.insert(carrier, fingerprint(carrier, &state));
                    }
                    report.push(format!("{carrier}: state restored from {}", path.display()));
                }
                Err(e) => {
                    let aside = self.dir.join(format!("{carrier}.json.unreadable"));
                    let moved = std::fs::rename(&path, &aside).is_ok();
                    report.push(format!(
                        "{carrier}: {} could not be imported ({e}); starting empty{}",
                        path.display(),
                        if moved { format!(", the file is kept as {}", aside.display()) } else { String::new() }
                    ));
                }
            }
        }
        report
    }

    /// Save the simulators that changed and are due at `now` (see [`SAVE_QUIET`]); returns
    /// the carriers written. A state equal to what the file holds is not written again.
    pub fn save_due(&mut self, sims: &Simulators, now: std::time::Instant) -> std::io::Result<Vec<&'static str>> {
        let due: Vec<&'static str> = SIM_CARRIERS.into_iter().filter(|c| sims.activity.take_due(c, now)).collect();
        self.save(sims, &due, false)
    }

    /// Write every simulator's state (at shutdown); returns the carriers written.
    pub fn save_all(&mut self, sims: &Simulators) -> std::io::Result<Vec<&'static str>> {
        sims.activity.clear();
        self.save(sims, &SIM_CARRIERS, true)
    }

    fn save(
        &mut self,
        sims: &Simulators,
        carriers: &[&'static str],
        force: bool,
    ) -> std::io::Result<Vec<&'static str>> {
        if carriers.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(&self.dir)?;
        let mut written = Vec::new();
        for &carrier in carriers {
            let Some(state) = sims.export_state(carrier) else { continue };
            let print = fingerprint(carrier, &state);
            if !force && self.saved.get(carrier) == Some(&print) {
                continue;
            }
            write_atomically(&self.file(carrier), state.to_string().as_bytes())?;
            self.saved.insert(carrier, print);
            written.push(carrier);
        }
        Ok(written)
    }
}

/// Write `bytes` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never half of one: a temp file in the same directory, synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The e-Courier state holds the simulator's session GUIDs: owner only, like master.key.
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Save `sims` into `state` as they change (see [`SAVE_QUIET`]), until aborted. With the
/// e-Courier clock running, its orders move with no request: it counts as always changing.
fn spawn_state_saver(
    sims: Simulators,
    state: std::sync::Arc<std::sync::Mutex<SimStateDir>>,
    clock_running: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAVE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = std::time::Instant::now();
            if clock_running {
                sims.activity.touch("ecourier", now);
            }
            let (sims, state) = (sims.clone(), state.clone());
            let saved = tokio::task::spawn_blocking(move || {
                state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).save_due(&sims, now)
            })
            .await;
            match saved {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the simulators' state could not be saved"),
                Err(e) => tracing::warn!(error = %e, "the simulators' state saver failed"),
            }
        }
    })
}

fn master_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("master.key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().to_owned());
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    std::fs::write(&path, &b64)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(b64)
}

pub async fn run(mut config: Config, data_dir: &Path, sim_clock_secs: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let mut private = None;
    let url = match &config.database_url {
        Some(u) => u.expose_secret().to_owned(),
        None => {
            let opts = Options { dir: data_dir.join("pg"), durable: true };
            println!("starting a private Postgres under {} ...", opts.dir.display());
            let pg = tokio::task::spawn_blocking(move || PrivatePostgres::ensure(&opts)).await??;
            let admin = store::connect(&pg.url("postgres"), 1).await?;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'shipgate')")
                    .fetch_one(&admin)
                    .await?;
            if !exists {
                sqlx::query("CREATE DATABASE shipgate").execute(&admin).await?;
            }
            admin.close().await;
            let url = pg.url("shipgate");
            private = Some(pg);
            url
        }
    };
    if config.master_keys.is_empty() {
        let key = master_key(data_dir)?;
        let overrides = format!("master_key = \"{key}\"");
        let with_key = Config::from_toml_overrides(&overrides)?;
        config.master_keys = with_key.master_keys;
    }
    config.database_url = Some(SecretString::from(url.clone()));
    config.api_key_env = "test".into();
    let db = store::connect(&url, config.database_max_connections).await?;
    store::MIGRATOR.run(&db).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(db, config)?;
    crate::runtime::spawn_housekeeping(state.clone());
    let workers = crate::runtime::spawn_workers(&state);

    let sims = Simulators::new();
    let mut sim_state = SimStateDir::new(data_dir.join("sims"));
    for line in sim_state.load(&sims) {
        println!("simulators: {line}");
    }
    let sim_state = std::sync::Arc::new(std::sync::Mutex::new(sim_state));
    let saver = spawn_state_saver(sims.clone(), sim_state.clone(), sim_clock_secs > 0);
    if sim_clock_secs > 0 {
        sims.ecourier.start_clock(Duration::from_secs(sim_clock_secs));
    }
    let base = format!("http://{addr}");
    let demo = create_demo(&state, &format!("Demo {}", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")), &base).await?;
    let router = sims.mount(http::router(state.clone()));
    let sims_dir = data_dir.join("sims");

    let key = demo.api_key.expose_secret();
    println!(
        r#"
shipgate sandbox is running on {base}

  API key (tenant {tenant}):  {key}
  Swagger UI:                 {base}/docs   (Authorize → paste the API key)
  Connections (each to its simulator under {base}/sim/<carrier>):
    ecourier   {conn}
    ecmr       {ecmr}
    aftership  {aftership}   (register: {{"connection_id":"…","tracking_number":"1234567890","service":"dhl"}})
    ecomdash   {ecomdash}   (sink: add "channel":{{"ecomdash":{{"connection_id":"…","shipment_id":28}}}} to a booking)
    ecomexpress {ecom}   (inbound only)

Ecom Express pushes scans to {base}/v1/inbound/ecomexpress/{ecom}
  Basic Auth user {ecom_user}, password {ecom_password}
  curl -s -u '{ecom_user}:{ecom_password}' -H 'Content-Type: application/json' {base}/v1/inbound/ecomexpress/{ecom} \
    -d '{{"awb":"DEMO1","datetime":"2026-11-22 10:30:00","status":"out for delivery","reason_code":"006 - OFD","reason_code_number":"006","location":"JRD","Employee":"Demo","status_update_number":"1","order_number":"ORD-1","city":"Vadodara","ref_awb":""}}'

Book a shipment:

curl -s -X POST {base}/v1/shipments \
  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -H "Idempotency-Key: $(date +%s%N)" \
  -d '{{"connection_id":"{conn}","reference":"DEMO-'$RANDOM'","stops":[{{"sequence":1,"type":"pickup","name":"James Madison","address":{{"line1":"2251 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"}},"scheduled_at":"2026-11-23T06:00:00-05:00"}},{{"sequence":2,"type":"delivery","name":"Bryan Moore","address":{{"line1":"2253 Orange Blossom Trail","city":"Orlando","state":"FL","postal_code":"32804","country":"US"}}}}],"parcels":[{{"reference":"PKG-1","quantity":1,"weight":{{"value":2.5,"unit":"lb"}}}}]}}'

Then POST /v1/shipments/{{id}}/refresh to see it move (the simulator advances orders every {clock}s;
POST {base}{ECOURIER_MOUNT}/_sim/orders/{{carrier_reference}}/advance moves one at once).
The simulators' orders and trackings are kept in {sims_dir} across restarts.
Ctrl-C stops everything.
"#,
        tenant = demo.tenant_id,
        conn = demo.ecourier_connection_id,
        ecmr = demo.ecmr_connection_id,
        aftership = demo.aftership_connection_id,
        ecomdash = demo.ecomdash_connection_id,
        ecom = demo.ecomexpress_connection_id,
        ecom_user = demo.ecomexpress_username,
        ecom_password = demo.ecomexpress_password.expose_secret(),
        clock = sim_clock_secs,
        sims_dir = sims_dir.display(),
    );
    let org = ecmr::EcmrSimConfig::default().organizations.first().map(|o| o.organization_id.clone());
    pod_demo::spawn(
        state.clone(),
        sims.clone(),
        pod_demo::PodDemo {
            tenant_id: demo.tenant_id.clone(),
            ecourier_connection_id: demo.ecourier_connection_id.clone(),
            ecmr_connection_id: demo.ecmr_connection_id.clone(),
            ecmr_organization_id: org.unwrap_or_default(),
            base: base.clone(),
        },
    );
    let served = crate::runtime::serve(listener, router, workers).await;
    saver.abort();
    let _ = saver.await;
    let saved = sim_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).save_all(&sims);
    if let Err(e) = saved {
        eprintln!("the simulators' state could not be saved to {}: {e}", sims_dir.display());
    }
    if let Some(pg) = private
        && pg.started_here()
    {
        println!("stopping the private Postgres ...");
        let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
    }
    served
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The simulators on a real port, as `shipgate sandbox` mounts them.
    async fn serve(sims: &Simulators) -> String {
        crate::crypto::install_tls_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = sims.mount(axum::Router::new());
        tokio::spawn(async move { axum::serve(listener, router).await });
        base
    }

    async fn post(url: String, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(url).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// e-Courier: Login as the demo account; the UserGUID.
    async fn ecourier_login(base: &str) -> String {
        let account = &ecourier::EcourierSimConfig::default().accounts[0];
        let (status, answer) = post(
            format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/Login"),
            &[],
            json!({"website": account.website, "username": account.username, "password": account.password}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        answer["UserGUID"].as_str().expect("UserGUID").to_owned()
    }

    async fn ecourier_get(base: &str, guid: &str, number: &str) -> (u16, Value) {
        post(
            format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/GetJsonOrder"),
            &[("UserGUID", guid)],
            json!({"OrderNumber": number}),
        )
        .await
    }

    /// Something in every simulator: an e-Courier order (the reference's SaveOrder example
    /// for the demo customer), an AfterShip tracking, an eCMR shipment, an ecomdash item.
    async fn fill(base: &str) -> String {
        let guid = ecourier_login(base).await;
        let mut order: Value =
            serde_json::from_str(include_str!("../../../../contract/fixtures/ecourier/saveorder.request.json"))
                .expect("fixture");
        order["Order"]["CustomerCode"] = json!(ecourier::EcourierSimConfig::default().accounts[0].customer_code);
        order["Order"]["OrderNumber"] = json!("SG-RESTART-1");
        let (status, answer) = post(
            format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/SaveOrder"),
            &[("UserGUID", &guid)],
            order,
        )
        .await;
        assert_eq!(status, 200, "{answer}");

        let key = aftership::AftershipSimConfig::default().api_keys[0].clone();
        let (status, answer) = post(
            format!("{base}{AFTERSHIP_MOUNT}{AFTERSHIP_API}/trackings"),
            &[("as-api-key", &key)],
            json!({"tracking": {"tracking_number": "RESTART1234", "slug": "dhl"}}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");

        let org = ecmr::EcmrSimConfig::default().organizations[0].clone();
        let (_, token) = post(
            format!("{base}{ECMR_MOUNT}/api/token"),
            &[],
            json!({"client_id": org.organization_id, "code": org.api_token}),
        )
        .await;
        let bearer = format!("Bearer {}", token["access_token"].as_str().expect("access_token"));
        let place = json!({"address": "Main 1", "postal_code": "1011 AB", "city": "Amsterdam", "country": "NL"});
        let party = json!({"name": "Sender BV", "address": "Main 1", "postal_code": "1011 AB", "city": "Amsterdam", "country": "NL"});
        let (status, answer) = post(
            format!("{base}{ECMR_MOUNT}/api/shipments"),
            &[("Authorization", &bearer)],
            json!({"shipment": {"reference": "SO-RESTART", "consignor": party, "consignee": party,
                "taking_over": {"place": place, "date": "2026-11-23T08:00:00+01:00"}, "delivery": {"place": place},
                "goods": [{"packages": 1, "description": "Tiles"}]}}),
        )
        .await;
        assert_eq!(status, 201, "{answer}");

        let ed = ecomdash::EcomdashSimConfig::default();
        let (status, answer) = post(
            format!("{base}{ECOMDASH_MOUNT}/api/Shipments/submitTrackingInfo"),
            &[
                ("Ocp-Apim-Subscription-Key", &ed.subscription_keys[0]),
                ("ecd-subscription-key", &ed.integration_keys[0]),
            ],
            json!([{"ShipmentId": 28, "TrackingNumber": "RESTART1234"}]),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        guid
    }

    /// Issue 9: after a restart, the sandbox's old demo shipments failed to refresh with
    /// "Order Not Found": the database kept them, the simulators did not.
    #[tokio::test]
    async fn the_simulators_state_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("shipgate-sims-{}", uuid::Uuid::new_v4().simple()));
        let before = Simulators::new();
        let base = serve(&before).await;
        let session = fill(&base).await;
        let mut saved = SimStateDir::new(&dir);
        let now = std::time::Instant::now();
        assert!(saved.save_due(&before, now).expect("saved").is_empty(), "not before things are quiet");
        let later = now + SAVE_QUIET;
        assert_eq!(saved.save_due(&before, later).expect("saved"), SIM_CARRIERS, "everything changed");
        assert!(saved.save_due(&before, later).expect("saved").is_empty(), "nothing changed since");
        // Reads change nothing.
        let (status, _) = ecourier_get(&base, &session, "SG-RESTART-1").await;
        assert_eq!(status, 200);
        let much_later = later + SAVE_MAX_DELAY;
        assert!(saved.save_due(&before, much_later).expect("saved").is_empty(), "a read is no change");
        for carrier in SIM_CARRIERS {
            assert!(dir.join(format!("{carrier}.json")).is_file(), "{carrier}");
            assert!(!dir.join(format!("{carrier}.json.tmp")).exists(), "{carrier}: the temp file was renamed");
        }

        // A new process: fresh simulators, the same data directory.
        let after = Simulators::new();
        let base = serve(&after).await;
        let fresh = ecourier_login(&base).await;
        let (status, answer) = ecourier_get(&base, &fresh, "SG-RESTART-1").await;
        assert_eq!(status, 500, "not there before the import: {answer}");
        let mut loaded = SimStateDir::new(&dir);
        let report = loaded.load(&after);
        assert_eq!(report.len(), 4, "{report:?}");
        assert!(report.iter().all(|l| l.contains("restored")), "{report:?}");
        // The order is found again, with the session the gateway had cached before.
        let (status, answer) = ecourier_get(&base, &session, "SG-RESTART-1").await;
        assert_eq!(status, 200, "the order is found again: {answer}");
        assert_eq!(answer["Order"]["@OrderNumber"], "SG-RESTART-1", "{answer}");
        assert_eq!(
            after.aftership.tracking_id("dhl", "RESTART1234"),
            before.aftership.tracking_id("dhl", "RESTART1234")
        );
        assert!(after.ecmr.shipment_by_reference("org-demo", "SO-RESTART").is_some());
        assert_eq!(after.ecomdash.submitted(), before.ecomdash.submitted());
        // The login on `after` above happened before the import, which dropped its session:
        // what is on disk is what was loaded.
        let much_later = std::time::Instant::now() + SAVE_MAX_DELAY;
        assert!(loaded.save_due(&after, much_later).expect("saved").is_empty(), "what was loaded is on disk");

        // A change through the control API is saved; a file that cannot be imported is put
        // aside, never overwritten.
        let advanced = reqwest::Client::new()
            .post(format!("{base}{ECOURIER_MOUNT}/_sim/orders/SG-RESTART-1/advance"))
            .send()
            .await
            .expect("advance");
        assert_eq!(advanced.status(), 200);
        let much_later = std::time::Instant::now() + SAVE_MAX_DELAY;
        assert_eq!(loaded.save_due(&after, much_later).expect("saved"), ["ecourier"]);
        assert_eq!(loaded.save_all(&after).expect("saved"), SIM_CARRIERS, "at shutdown: everything");
        std::fs::write(dir.join("ecmr.json"), "{\"version\": 99}").expect("write");
        let report = SimStateDir::new(&dir).load(&Simulators::new());
        assert!(report.iter().any(|l| l.starts_with("ecmr:") && l.contains("could not be imported")), "{report:?}");
        assert!(dir.join("ecmr.json.unreadable").is_file());
        assert!(!dir.join("ecmr.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
