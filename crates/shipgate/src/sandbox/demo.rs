//! The demo tenant: one API key and a connection to each carrier simulator.

use std::collections::BTreeMap;

use secrecy::SecretString;

use crate::app::AppState;
use crate::crypto::Purpose;
use crate::{ids, store};

use super::*;

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
