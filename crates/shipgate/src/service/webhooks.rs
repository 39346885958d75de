//! Webhook endpoints and their deliveries (docs/product.md "Webhook endpoint").
//!
//! The signing secret (`whsec_…`) is generated here, shown once in the create (or
//! rotate) answer, and stored sealed with `crate::crypto` (AAD binds tenant +
//! endpoint). A rotation keeps the old secret, sealed the same way, signing beside the
//! new one for `webhook_secret_overlap_hours`. URLs pass the SSRF guard here; the
//! delivery client checks again at connect time.
//!
//! Re-sending: [`retry_delivery`] queues one delivery now; [`replay`] queues every
//! `failed` or `cancelled` delivery of the endpoint created at or after `since`. Each
//! allows one more attempt (no new retry schedule), so a replay of a still-broken
//! endpoint ends quickly and can be run again.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::crypto::Purpose;
use crate::domain::FieldError;
use crate::ids;
use crate::service::views::{WebhookDelivery, WebhookEndpoint};
use crate::service::{Caller, Error, Page, PageRequest, Refusal, Result};
use crate::store;
use crate::store::events::EVENT_TYPES;
use crate::store::webhooks::{AttemptRow, EndpointRow, EndpointUpdate, NewEndpoint};
use crate::webhooks::ssrf::{Guard, literal_ip};

/// A new endpoint as a front end asks for it.
#[derive(Debug)]
pub struct EndpointDraft {
    pub url: String,
    pub description: Option<String>,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub enabled: Option<bool>,
}

/// A change to an endpoint: each field absent (unchanged) or replaced.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Enabling clears `disabled_reason`; disabling cancels pending deliveries.
    pub enabled: Option<bool>,
    /// Generate a new signing secret (returned once); the old one keeps signing for the
    /// overlap.
    pub rotate_secret: bool,
}

fn check_event_types(types: &[String]) -> Option<FieldError> {
    types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())).map(|bad| {
        FieldError::new("event_types", format!("{bad:?} is not an event type; one of {}", EVENT_TYPES.join(", ")))
    })
}

fn check_description(d: Option<&str>) -> Option<FieldError> {
    d.filter(|d| d.len() > 500).map(|_| FieldError::new("description", "must be at most 500 characters"))
}

/// Refuse URLs that are not http(s) or point at a private, loopback, link-local or
/// metadata address — as a literal or through any address the name resolves to now
/// (docs/quality.md security). A name that does not resolve is accepted: the connect-time
/// guard decides when it does.
async fn check_url(guard: &Guard, raw: &str) -> Result<String, FieldError> {
    let bad = |m: &str| FieldError::new("url", m);
    if raw.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials; verify the signature instead"));
    }
    let Some(host) = url.host_str() else { return Err(bad("must name a host")) };
    let refused =
        |ip: IpAddr| bad(&format!("points to {ip}, a private or reserved address that webhooks may not reach"));
    if let Some(ip) = literal_ip(&url) {
        return guard.check(ip).map(|()| url.to_string()).map_err(|_| refused(ip));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host, port))).await {
        for a in addrs {
            if !guard.permits(a.ip()) {
                return Err(refused(a.ip()));
            }
        }
    }
    Ok(url.to_string())
}

fn dedup(types: Vec<String>) -> Vec<String> {
    types.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

fn guard(state: &AppState) -> Guard {
    Guard::new(state.config.webhooks.allow_networks.clone())
}

/// Create an endpoint; the answer carries its signing secret, shown only this once.
pub async fn create_endpoint(state: &AppState, caller: &Caller, draft: EndpointDraft) -> Result<WebhookEndpoint> {
    let mut errors: Vec<FieldError> = Vec::new();
    errors.extend(check_event_types(&draft.event_types));
    errors.extend(check_description(draft.description.as_deref()));
    let url = match check_url(&guard(state), &draft.url).await {
        Ok(u) => Some(u),
        Err(e) => {
            errors.insert(0, e);
            None
        }
    };
    let Some(url) = url.filter(|_| errors.is_empty()) else { return Err(Error::Invalid(errors)) };
    let id = ids::new_id("whe");
    let (raw, text) = crate::webhooks::new_secret();
    let sealed = state.crypto.encrypt(&caller.tenant_id, &id, Purpose::WebhookSecret, &raw);
    let event_types = dedup(draft.event_types);
    let mut conn = state.db.acquire().await?;
    let row = store::webhooks::insert_endpoint(
        &mut conn,
        &NewEndpoint {
            tenant_id: &caller.tenant_id,
            id: &id,
            url: &url,
            description: draft.description.as_deref(),
            event_types: &event_types,
            secret_enc: &sealed,
            enabled: draft.enabled.unwrap_or(true),
        },
    )
    .await?;
    Ok(WebhookEndpoint::new(row, Some(text)))
}

/// The tenant's endpoints, newest first (the key is the last id); secrets never listed.
pub async fn list_endpoints(state: &AppState, caller: &Caller, page: &PageRequest) -> Result<Page<WebhookEndpoint>> {
    let mut conn = state.db.acquire().await?;
    let rows =
        store::webhooks::list_endpoints(&mut conn, &caller.tenant_id, page.after.as_deref(), page.limit + 1).await?;
    Ok(Page::of(rows, page.limit, |r| r.id.clone(), |r| WebhookEndpoint::new(r, None)))
}

async fn load(state: &AppState, tenant: &str, id: &str) -> Result<EndpointRow> {
    if !ids::is_id("whe", id) {
        return Err(Error::NotFound("webhook endpoint"));
    }
    let mut conn = state.db.acquire().await?;
    store::webhooks::get_endpoint(&mut conn, tenant, id).await?.ok_or(Error::NotFound("webhook endpoint"))
}

/// The endpoint, without its secret.
pub async fn get_endpoint(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookEndpoint> {
    Ok(WebhookEndpoint::new(load(state, &caller.tenant_id, id).await?, None))
}

/// Change the URL, description, event filter or `enabled`, or rotate the secret (the
/// new one is in the answer, once).
pub async fn update_endpoint(
    state: &AppState,
    caller: &Caller,
    id: &str,
    changes: EndpointChanges,
) -> Result<WebhookEndpoint> {
    let tenant = caller.tenant_id.as_str();
    let row = load(state, tenant, id).await?;
    let mut errors: Vec<FieldError> = Vec::new();
    let url = match &changes.url {
        Some(u) => match check_url(&guard(state), u).await {
            Ok(u) => u,
            Err(e) => {
                errors.push(e);
                String::new()
            }
        },
        None => row.url.clone(),
    };
    if let Some(t) = &changes.event_types {
        errors.extend(check_event_types(t));
    }
    errors.extend(check_description(changes.description.as_deref()));
    Error::check(errors)?;
    let description = changes.description.or(row.description.clone());
    let event_types = changes.event_types.map(dedup).unwrap_or(row.event_types.clone());
    let enabled = changes.enabled.unwrap_or(row.enabled);
    let disabled_reason = match (enabled, changes.enabled) {
        (true, _) => None,
        (false, Some(false)) if row.enabled => Some("disabled by the API".to_owned()),
        (false, _) => row.disabled_reason.clone(),
    };
    let rotated = changes.rotate_secret.then(crate::webhooks::new_secret);
    let sealed = rotated.as_ref().map(|(raw, _)| state.crypto.encrypt(tenant, id, Purpose::WebhookSecret, raw));
    let mut tx = store::begin(&state.db).await?;
    let updated = store::webhooks::update_endpoint(
        &mut tx,
        tenant,
        id,
        &EndpointUpdate {
            url: &url,
            description: description.as_deref(),
            event_types: &event_types,
            secret_enc: sealed.as_deref(),
            secret_overlap_secs: state.config.webhooks.secret_overlap.as_secs_f64(),
            enabled,
            disabled_reason: disabled_reason.as_deref(),
        },
    )
    .await?
    .ok_or(Error::NotFound("webhook endpoint"))?;
    if !enabled {
        store::webhooks::cancel_pending(&mut tx, tenant, id).await?;
    }
    tx.commit().await?;
    Ok(WebhookEndpoint::new(updated, rotated.map(|(_, text)| text)))
}

/// Delete an endpoint and its delivery log.
pub async fn delete_endpoint(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    if !ids::is_id("whe", id) {
        return Err(Error::NotFound("webhook endpoint"));
    }
    let mut conn = state.db.acquire().await?;
    if store::webhooks::delete_endpoint(&mut conn, &caller.tenant_id, id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("webhook endpoint"))
    }
}

/// An endpoint's deliveries, newest first, each with every attempt (the key is the
/// last delivery's queue sequence number). `status`: `pending`, `succeeded`, `failed`
/// or `cancelled`.
pub async fn list_deliveries(
    state: &AppState,
    caller: &Caller,
    endpoint_id: &str,
    status: Option<&str>,
    page: &PageRequest<i64>,
) -> Result<Page<WebhookDelivery, i64>> {
    let tenant = caller.tenant_id.as_str();
    let endpoint = load(state, tenant, endpoint_id).await?;
    let mut conn = state.db.acquire().await?;
    let rows =
        store::webhooks::list_deliveries(&mut conn, tenant, &endpoint.id, status, page.after, page.limit + 1).await?;
    let mut page = Page::of(rows, page.limit, |r| r.seq, |r| r);
    let ids: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
    let mut attempts: HashMap<String, Vec<AttemptRow>> = HashMap::new();
    for a in store::webhooks::attempts_of(&mut conn, tenant, &ids).await? {
        attempts.entry(a.delivery_id.clone()).or_default().push(a);
    }
    let items = std::mem::take(&mut page.items)
        .into_iter()
        .map(|r| {
            let a = attempts.remove(&r.id).unwrap_or_default();
            WebhookDelivery::new(r, a)
        })
        .collect();
    Ok(Page { items, next: page.next })
}

fn endpoint_disabled(e: &EndpointRow) -> Error {
    Error::refused(
        Refusal::EndpointDisabled,
        format!(
            "the endpoint is disabled ({}); enable it with PATCH first",
            e.disabled_reason.as_deref().unwrap_or("no reason recorded")
        ),
    )
}

/// Whether `id` has the shape of a delivery id (`whd_` and 32 hex digits).
fn is_delivery_id(id: &str) -> bool {
    id.len() == 36 && id.strip_prefix("whd_").is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Send one delivery again now: one more attempt, whatever its state.
pub async fn retry_delivery(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookDelivery> {
    if !is_delivery_id(id) {
        return Err(Error::NotFound("webhook delivery"));
    }
    let tenant = caller.tenant_id.as_str();
    let mut tx = store::begin(&state.db).await?;
    let endpoint_id =
        store::webhooks::delivery_endpoint(&mut tx, tenant, id).await?.ok_or(Error::NotFound("webhook delivery"))?;
    let endpoint = store::webhooks::get_endpoint(&mut tx, tenant, &endpoint_id)
        .await?
        .ok_or(Error::NotFound("webhook delivery"))?;
    if !endpoint.enabled {
        return Err(endpoint_disabled(&endpoint));
    }
    store::webhooks::retry_now(&mut tx, tenant, id).await?;
    let row = store::webhooks::get_delivery(&mut tx, tenant, id).await?.ok_or(Error::NotFound("webhook delivery"))?;
    let attempts = store::webhooks::attempts_of(&mut tx, tenant, &[id.to_owned()]).await?;
    tx.commit().await?;
    Ok(WebhookDelivery::new(row, attempts))
}

/// Queue every failed or cancelled delivery of the endpoint created at or after
/// `since` for one more attempt now; how many.
pub async fn replay(state: &AppState, caller: &Caller, id: &str, since: DateTime<Utc>) -> Result<u64> {
    if !crate::domain::time::in_range(&since) {
        return Err(Error::invalid("since", crate::domain::time::RANGE_MESSAGE));
    }
    let endpoint = load(state, &caller.tenant_id, id).await?;
    if !endpoint.enabled {
        return Err(endpoint_disabled(&endpoint));
    }
    let mut conn = state.db.acquire().await?;
    Ok(store::webhooks::replay_failed(&mut conn, &caller.tenant_id, id, since).await?)
}
