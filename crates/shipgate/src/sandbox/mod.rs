//! `shipgate sandbox`: the whole product on one machine with no carrier accounts.
//! Uses `DATABASE_URL` or a private Postgres under `<data_dir>/pg`, mounts the carrier
//! simulators under `/sim/<carrier>`, creates a demo tenant with a connection to each
//! available simulator, and prints an API key, a curl that books a shipment, and the
//! Swagger UI address.

pub mod aftership;
pub mod ecmr;
pub mod ecomdash;
pub mod ecomexpress;
pub use sims::ecourier;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

use crate::app::{self, AppState};
use crate::config::Config;
use crate::crypto::Purpose;
use crate::{http, ids, store};
use pgembed::{Options, PrivatePostgres};

/// Most requests a simulator remembers for `requests()` (older halves are dropped).
pub const REQUEST_LOG_CAP: usize = 20_000;

/// Where the e-Courier simulator is mounted.
pub const ECOURIER_MOUNT: &str = "/sim/ecourier";

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
    let (_, api_key) = http::auth::create_key(&state.db, &tenant_id, "test", Some("sandbox")).await?;
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
        &format!("{base}/sim/ecmr"),
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
        &format!("{base}/sim/aftership"),
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
        &format!("{base}/sim/ecomdash"),
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

/// Every simulator, mounted under `/sim/<carrier>` of `router`.
pub struct Simulators {
    pub ecourier: ecourier::EcourierSim,
    pub ecmr: ecmr::EcmrSim,
    pub aftership: aftership::AftershipSim,
    pub ecomdash: ecomdash::EcomdashSim,
}

impl Simulators {
    pub fn new() -> Simulators {
        Simulators {
            ecourier: ecourier::EcourierSim::new(Default::default()),
            ecmr: ecmr::EcmrSim::new(Default::default()),
            aftership: aftership::AftershipSim::new(Default::default()),
            ecomdash: ecomdash::EcomdashSim::new(Default::default()),
        }
    }

    pub fn mount(&self, router: axum::Router) -> axum::Router {
        router
            .nest(ECOURIER_MOUNT, self.ecourier.router())
            .nest("/sim/ecmr", self.ecmr.router())
            .nest("/sim/aftership", self.aftership.router())
            .nest("/sim/ecomdash", self.ecomdash.router())
    }
}

impl Default for Simulators {
    fn default() -> Self {
        Simulators::new()
    }
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
    app::spawn_housekeeping(state.clone());
    let workers = app::spawn_workers(&state);

    let sims = Simulators::new();
    if sim_clock_secs > 0 {
        sims.ecourier.start_clock(Duration::from_secs(sim_clock_secs));
    }
    let base = format!("http://{addr}");
    let demo = create_demo(&state, &format!("Demo {}", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")), &base).await?;
    let router = sims.mount(http::router(state));

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
    ecomdash   {ecomdash}   (sink: add "channel":{{"ecomdash":{{"connection_id":"…","shipment_id":"28"}}}} to a booking)
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
    );
    let served = app::serve(listener, router, workers).await;
    if let Some(pg) = private
        && pg.started_here()
    {
        println!("stopping the private Postgres ...");
        let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
    }
    served
}
