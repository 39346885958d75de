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

mod console_demo;
mod demo;
mod pod_demo;
mod simstate;
#[cfg(test)]
mod tests;

pub use demo::*;
pub use simstate::*;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::config::Config;
use crate::store;
use pgembed::{Options, PrivatePostgres};

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
    console_demo::adjust_config(&mut config);
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
    let router = console_demo::mount(sims.mount(crate::runtime::router(state.clone())));
    let sims_dir = data_dir.join("sims");

    let key = demo.api_key.expose_secret();
    println!(
        r#"
shipgate sandbox is running on {base}

  API key (tenant {tenant}):  {key}
  Swagger UI:                 {base}/docs   (Authorize → paste the API key)
  Ops console:                {base}/console/   (sign in with the API key)
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
    let activity = console_demo::DemoActivity {
        base: base.clone(),
        api_key: key.to_owned(),
        tenant_id: demo.tenant_id.clone(),
        ecourier_connection_id: demo.ecourier_connection_id.clone(),
        ecomexpress_connection_id: demo.ecomexpress_connection_id.clone(),
        ecomexpress_username: demo.ecomexpress_username.clone(),
        ecomexpress_password: demo.ecomexpress_password.expose_secret().to_owned(),
    };
    console_demo::spawn(state, sims.clone(), activity);
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
