//! Outbound events (docs/product.md "Webhook endpoint"): every event's `data` carries the
//! shipment as the API shows it after the change ([`views::Shipment`]), plus what
//! changed; and the tenant's event log (`GET /v1/events`).

use serde_json::{Value, json};

use crate::app::AppState;
use crate::service::views::json_text::WriteJson as _;
use crate::service::views::{self, Event};
use crate::service::{Caller, Error, Page, PageRequest, Result};
use crate::store;
use crate::store::events::NewEvent;
use crate::store::shipments::ShipmentRow;

/// The event types a subscriber can filter on.
pub use crate::store::events::EVENT_TYPES;

/// The shipment as `GET /v1/shipments/{id}` shows it.
pub fn shipment_json(row: &ShipmentRow) -> Result<Value> {
    serde_json::to_value(views::Shipment::try_from(row.clone())?).map_err(Error::internal)
}

/// An event about `row`: `{shipment, ...extra}` (`extra` must be an object or null).
pub fn shipment_event(event_type: &'static str, row: &ShipmentRow, extra: Value) -> Result<NewEvent> {
    let mut data = json!({"shipment": shipment_json(row)?});
    if let (Some(map), Value::Object(extra)) = (data.as_object_mut(), extra) {
        map.extend(extra);
    }
    Ok(NewEvent { event_type, data })
}

/// [`shipment_event`]'s data as JSON text, for a statement to store as it is (cast from
/// text to jsonb there): the group commit of scans (`service::inbound::group`). The
/// writers that already hold the shipment's view (a new shipment's `shipment.created`,
/// a booking's `shipment.booked`) call [`view_event_text`]. No `Value` tree is built:
/// under the push load, building, cloning and dropping those trees took about a tenth of the
/// gateway's CPU (bench/README.md, "Allocator"), and a fifth of a booking's instructions
/// ("P3 on a slower machine"). The shipment is written by its
/// [`WriteJson`](views::json_text::WriteJson): the same bytes as its `Serialize`,
/// without serde's per-key work. `extra` are the top-level members beside `shipment`.
pub fn shipment_event_text(row: &ShipmentRow, extra: &[(&str, &Value)]) -> Result<String> {
    view_event_text(&views::Shipment::try_from(row.clone())?, extra)
}

/// [`shipment_event_text`] for a shipment the caller already holds as the API shows it
/// (a booking writes the row's JSON values once, for the insert, `shipment.created` and
/// `shipment.booked`).
pub fn view_event_text(shipment: &views::Shipment, extra: &[(&str, &Value)]) -> Result<String> {
    let mut buf = Vec::with_capacity(shipment.json_size_hint() + 16);
    buf.extend_from_slice(b"{\"shipment\":");
    shipment.write_json(&mut buf).map_err(Error::internal)?;
    for (key, value) in extra {
        buf.push(b',');
        serde_json::to_writer(&mut buf, key).map_err(Error::internal)?;
        buf.push(b':');
        serde_json::to_writer(&mut buf, value).map_err(Error::internal)?;
    }
    buf.push(b'}');
    String::from_utf8(buf).map_err(Error::internal)
}

/// Which events a list shows.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventFilter<'a> {
    pub shipment_id: Option<&'a str>,
    /// One of [`EVENT_TYPES`].
    pub event_type: Option<&'a str>,
}

/// The tenant's events in the order they were written, after the sequence number
/// `page.after` (the key is the last event's sequence number).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: EventFilter<'_>,
    page: &PageRequest<i64>,
) -> Result<Page<Event, i64>> {
    let mut conn = state.db.acquire().await?;
    let rows = store::events::list(
        &mut conn,
        &caller.tenant_id,
        page.after.unwrap_or(0),
        filter.shipment_id,
        filter.event_type,
        page.limit + 1,
    )
    .await?;
    Ok(Page::of(rows, page.limit, |r| r.seq, Event::from))
}
