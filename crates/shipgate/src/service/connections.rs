//! Carrier connections: a tenant's account with one carrier. Credentials are checked
//! against the carrier's fields, encrypted (AEAD bound to tenant + connection), never
//! returned and never logged; the views list which fields are set.
//!
//! A connection's status as carrier calls reveal it ([`note_connection_outcome`]) is
//! shared by the API (a refused verification or booking) and the tracking engine (a
//! refused poll).

use std::collections::BTreeMap;

use secrecy::ExposeSecret as _;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::carriers::{self, CallCx, CarrierError};
use crate::crypto::Purpose;
use crate::domain::FieldError;
use crate::ids;
use crate::service::views::Connection;
use crate::service::{Caller, Error, Page, PageRequest, Refusal, Result};
use crate::store;
use crate::store::connections::{ConnectionRow, ConnectionUpdate, NewConnection};

/// A new connection as a front end asks for it.
#[derive(Debug)]
pub struct ConnectionDraft {
    pub carrier: String,
    pub name: String,
    pub base_url: Option<String>,
    /// One of the carrier's credential sets; empty for a carrier whose credentials the
    /// gateway generates (then they are in the answer, once).
    pub credentials: BTreeMap<String, String>,
    pub settings: Map<String, Value>,
}

/// A change to a connection: each field absent (unchanged) or replaced as a whole.
#[derive(Debug, Default)]
pub struct ConnectionChanges {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub credentials: Option<BTreeMap<String, String>>,
    pub settings: Option<Map<String, Value>>,
}

/// The view of a row, with where its carrier pushes to.
fn view(state: &AppState, row: ConnectionRow) -> Connection {
    let inbound_url = super::inbound::inbound_url(state, &row.carrier, &row.id);
    Connection::new(row, inbound_url)
}

fn check_name(name: &str) -> Option<FieldError> {
    (name.trim().is_empty() || name.len() > 200).then(|| FieldError::new("name", "must be 1-200 characters"))
}

/// The published limits of `Credentials` and `Settings` (`views::schema`).
fn check_sizes(creds: &BTreeMap<String, String>, settings: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if creds.len() > 20 {
        errors.push(FieldError::new("credentials", "at most 20 fields"));
    }
    for (k, v) in creds {
        if k.is_empty() || k.chars().count() > 64 || v.chars().count() > 4096 {
            errors.push(FieldError::new(
                format!("credentials.{}", k.chars().take(64).collect::<String>()),
                "names 1-64 characters, values at most 4096",
            ));
        }
    }
    if settings.len() > 50 {
        errors.push(FieldError::new("settings", "at most 50 keys"));
    }
    for (k, v) in settings {
        if k.is_empty() || k.chars().count() > 64 || v.to_string().chars().count() > 4096 {
            errors.push(FieldError::new(
                format!("settings.{}", k.chars().take(64).collect::<String>()),
                "keys 1-64 characters, values at most 4096 characters as JSON",
            ));
        }
    }
    errors
}

fn validate(
    carrier: &str,
    name: &str,
    base_url: Option<&str>,
    creds: &BTreeMap<String, String>,
    settings: &Map<String, Value>,
) -> Result<()> {
    let info = carriers::get(carrier).ok_or_else(|| {
        let known: Vec<_> = carriers::all().iter().map(|c| c.slug).collect();
        Error::invalid("carrier", format!("unknown carrier; one of {}", known.join(", ")))
    })?;
    if !info.available {
        return Err(Error::refused(
            Refusal::CarrierNotAvailable,
            format!("the {} adapter is not available in this version", info.name),
        ));
    }
    let mut errors: Vec<FieldError> = check_name(name).into_iter().collect();
    errors.extend(check_sizes(creds, settings));
    // The carrier's fields and rules, the base URL, and an inbound secret's strength.
    errors.extend(info.validate_connection(creds, settings, base_url));
    Error::check(errors)
}

/// The credentials sealed for this connection, and the names of their fields.
fn seal(state: &AppState, tenant: &str, id: &str, creds: &BTreeMap<String, String>) -> Result<(Vec<u8>, Vec<String>)> {
    let plain = serde_json::to_vec(creds).map_err(Error::internal)?;
    Ok((state.crypto.encrypt(tenant, id, Purpose::Credentials, &plain), creds.keys().cloned().collect()))
}

/// Create a connection. A carrier whose credentials are ours to choose (an inbound-only
/// one) gets strong ones when none are given: they are in this answer, once.
pub async fn create(state: &AppState, caller: &Caller, mut draft: ConnectionDraft) -> Result<Connection> {
    let generate = carriers::get(&draft.carrier).and_then(|c| c.generate_credentials);
    let generated = generate.filter(|_| draft.credentials.is_empty()).map(|g| g());
    if let Some(g) = &generated {
        draft.credentials = g.clone();
    }
    validate(&draft.carrier, &draft.name, draft.base_url.as_deref(), &draft.credentials, &draft.settings)?;
    let id = ids::new_id("con");
    let (enc, fields) = seal(state, &caller.tenant_id, &id, &draft.credentials)?;
    let mut conn = state.db.acquire().await?;
    // The SQL knows the registry's carriers before this connection's first shipment.
    super::registry::publish(&mut conn).await?;
    let row = store::connections::insert(
        &mut conn,
        &NewConnection {
            tenant_id: &caller.tenant_id,
            id: &id,
            carrier: &draft.carrier,
            name: draft.name.trim(),
            base_url: draft.base_url.as_deref(),
            credentials_enc: &enc,
            credential_fields: &fields,
            settings: &draft.settings,
        },
    )
    .await?;
    Ok(Connection { generated_credentials: generated, ..view(state, row) })
}

/// The tenant's connections, newest first (the key is the last id).
pub async fn list(state: &AppState, caller: &Caller, page: &PageRequest) -> Result<Page<Connection>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::connections::list(&mut conn, &caller.tenant_id, page.after.as_deref(), page.limit + 1).await?;
    Ok(Page::of(rows, page.limit, |r| r.id.clone(), |r| view(state, r)))
}

/// The tenant's connection row; an id of the wrong shape is simply not found.
pub(crate) async fn load(state: &AppState, tenant: &str, id: &str) -> Result<ConnectionRow> {
    if !ids::is_id("con", id) {
        return Err(Error::NotFound("connection"));
    }
    let mut conn = state.db.acquire().await?;
    store::connections::get(&mut conn, tenant, id).await?.ok_or(Error::NotFound("connection"))
}

/// The tenant's connection.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> Result<Connection> {
    Ok(view(state, load(state, &caller.tenant_id, id).await?))
}

/// Change the name, base URL, credentials (replaced as a whole) or settings (replaced
/// as a whole); the result must still be a valid connection of its carrier.
pub async fn update(state: &AppState, caller: &Caller, id: &str, changes: ConnectionChanges) -> Result<Connection> {
    let row = load(state, &caller.tenant_id, id).await?;
    let name = changes.name.unwrap_or(row.name.clone());
    let base_url = changes.base_url.or(row.base_url.clone());
    let settings = changes.settings.unwrap_or(row.settings.0.clone());
    let credentials_changed = changes.credentials.is_some();
    let creds = match changes.credentials {
        Some(c) => c,
        None => state
            .credentials(&row)
            .map_err(Error::Internal)?
            .0
            .into_iter()
            .map(|(k, v)| (k, v.expose_secret().to_owned()))
            .collect(),
    };
    validate(&row.carrier, &name, base_url.as_deref(), &creds, &settings)?;
    let (enc, fields) = seal(state, &caller.tenant_id, id, &creds)?;
    let mut conn = state.db.acquire().await?;
    let updated = store::connections::update(
        &mut conn,
        &caller.tenant_id,
        id,
        &ConnectionUpdate {
            name: name.trim(),
            base_url: base_url.as_deref(),
            credentials_enc: &enc,
            credential_fields: &fields,
            settings: &settings,
            credentials_changed,
        },
    )
    .await?
    .ok_or(Error::NotFound("connection"))?;
    state.forget_connection(id);
    Ok(view(state, updated))
}

/// Delete a connection: its shipments stay readable, its secrets are wiped.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    if !ids::is_id("con", id) {
        return Err(Error::NotFound("connection"));
    }
    let mut conn = state.db.acquire().await?;
    state.forget_connection(id);
    if store::connections::delete(&mut conn, &caller.tenant_id, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("connection"))
    }
}

/// Prove the credentials with the carrier (e-Courier: Login, or RefreshGUID for a
/// directly issued GUID) and record the outcome in the connection's status. A carrier
/// the gateway never calls (it only pushes) has nothing to prove.
pub async fn verify(state: &AppState, caller: &Caller, id: &str) -> Result<Connection> {
    let row = load(state, &caller.tenant_id, id).await?;
    if carriers::get(&row.carrier).is_some_and(|c| c.client.is_none()) {
        return Ok(view(state, row));
    }
    let cx = CallCx::new();
    let outcome = match state.client(&row) {
        Ok(client) => client.verify(&cx).await,
        Err(e) => Err(e),
    };
    let mut conn = state.db.acquire().await?;
    super::shipments::save_exchanges(&mut conn, &caller.tenant_id, None, cx.take()).await?;
    drop(conn);
    note_connection_outcome(state, &row, outcome.as_ref().err()).await;
    outcome?;
    get(state, caller, id).await
}

/// Mark the connection misconfigured when the carrier says so (it is then no longer
/// polled until someone fixes it), or active again after a success (`e` None).
pub async fn note_connection_outcome(state: &AppState, row: &ConnectionRow, e: Option<&CarrierError>) {
    state.forget_connection(&row.id);
    let result = async {
        let mut conn = state.db.acquire().await?;
        match e {
            Some(CarrierError::Misconfigured { message }) => {
                store::connections::set_status(
                    &mut conn,
                    &row.tenant_id,
                    &row.id,
                    "misconfigured",
                    Some(message),
                    false,
                )
                .await
            }
            None => store::connections::set_status(&mut conn, &row.tenant_id, &row.id, "active", None, true).await,
            Some(_) => Ok(()),
        }
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not record connection status");
    }
}
