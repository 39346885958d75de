//! One shipment's story for the console (docs/console.md "Shipment"): its tracking
//! events, its history with the actors, the carrier exchanges (redacted as they were
//! stored) and the webhook deliveries its events caused, merged in time order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::service::shipments::load_doc;
use crate::service::views::{CarrierExchange, HistoryEntry, Shipment, TrackingEvent, WebhookDelivery};
use crate::service::{Caller, Result};
use crate::store;
use crate::store::webhooks::AttemptRow;

/// Most webhook deliveries a timeline shows (a shipment has a handful of events, each
/// delivered to the tenant's endpoints).
const MAX_DELIVERIES: i64 = 200;

/// One entry of the timeline.
#[derive(Debug)]
pub enum Entry {
    Event(TrackingEvent),
    History(HistoryEntry),
    Exchange(CarrierExchange),
    Delivery(WebhookDelivery),
}

impl Entry {
    /// When it happened (a tracking event: when the carrier says it occurred).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Entry::Event(e) => e.occurred_at,
            Entry::History(h) => h.at,
            Entry::Exchange(x) => x.created_at,
            Entry::Delivery(d) => d.created_at,
        }
    }
}

/// The shipment and its timeline, oldest first.
pub async fn timeline(state: &AppState, caller: &Caller, id: &str) -> Result<(Shipment, Vec<Entry>)> {
    let tenant = caller.tenant_id.as_str();
    let shipment = load_doc(state, tenant, id).await?;
    let mut conn = state.db.acquire().await?;
    let events = store::shipments::list_events(&mut conn, tenant, id).await?;
    let history = store::shipments::list_history(&mut conn, tenant, id).await?;
    let exchanges = store::exchanges::list_for_shipment(&mut conn, tenant, id).await?;
    let deliveries = store::webhooks::list_for_shipment(&mut conn, tenant, id, MAX_DELIVERIES).await?;
    let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
    let mut attempts: HashMap<String, Vec<AttemptRow>> = HashMap::new();
    for a in store::webhooks::attempts_of(&mut conn, tenant, &ids).await? {
        attempts.entry(a.delivery_id.clone()).or_default().push(a);
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(events.len() + history.len() + exchanges.len() + ids.len());
    entries.extend(events.into_iter().map(|e| Entry::Event(e.into())));
    entries.extend(history.into_iter().map(|h| Entry::History(h.into())));
    entries.extend(exchanges.into_iter().map(|x| Entry::Exchange(x.into())));
    entries.extend(deliveries.into_iter().map(|d| {
        let a = attempts.remove(&d.id).unwrap_or_default();
        Entry::Delivery(WebhookDelivery::new(d, a))
    }));
    // Stable: entries at the same instant keep the order above (event, history, exchange, delivery).
    entries.sort_by_key(Entry::at);
    Ok((Shipment::try_from(shipment)?, entries))
}
