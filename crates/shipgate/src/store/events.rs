//! Outbound events (the outbox): written in the caller's transaction together with the
//! change they describe, numbered per shipment, fanned out to webhook endpoints later.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;

/// The outbound event types (docs/product.md "Webhook endpoint").
pub const EVENT_TYPES: &[&str] = &[
    "shipment.created",
    "shipment.booked",
    "shipment.booking_failed",
    "shipment.status_changed",
    "shipment.event_added",
    "shipment.cancelled",
];

/// One event to emit: its type and its `data` object.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub data: Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub tenant_id: String,
    pub id: String,
    pub seq: i64,
    pub shipment_id: String,
    pub shipment_seq: i32,
    pub event_type: String,
    pub data: Json<Value>,
    pub created_at: DateTime<Utc>,
}

/// New ids, types, data and count of `events`, as the statements' array parameters.
fn columns(events: &[NewEvent]) -> (Vec<String>, Vec<&str>, Vec<Value>, i32) {
    let ids = events.iter().map(|_| crate::ids::new_id("evt")).collect();
    let types = events.iter().map(|e| e.event_type).collect();
    let data = events.iter().map(|e| e.data.clone()).collect();
    (ids, types, data, events.len() as i32)
}

/// Append `events` for one shipment in the caller's transaction: one statement bumps the
/// shipment's counter by the number of events and inserts them numbered in order.
/// Returns the new events' ids.
pub async fn emit(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    events: &[NewEvent],
) -> sqlx::Result<Vec<String>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, types, data, n) = columns(events);
    sqlx::query!(
        r#"WITH s AS (UPDATE shipments SET event_seq = event_seq + $3
                      WHERE tenant_id = $1 AND id = $2 RETURNING event_seq)
           INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
           SELECT $1, e.id, $2, s.event_seq - $3 + e.ord::int4, e.type, e.data
           FROM s, unnest($4::text[], $5::text[], $6::jsonb[]) WITH ORDINALITY AS e(id, type, data, ord)"#,
        tenant_id,
        shipment_id,
        n,
        &ids,
        &types as &[&str],
        &data,
    )
    .execute(conn)
    .await?;
    Ok(ids)
}

/// [`emit`] for a shipment whose counter the caller's previous statement already moved
/// by `events.len()` in this transaction (an inbound scan's): the events take the last
/// numbers, and the shipment row is not written again (no second row version).
pub async fn emit_counted(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    events: &[NewEvent],
) -> sqlx::Result<Vec<String>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, types, data, n) = columns(events);
    sqlx::query!(
        r#"INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
           SELECT $1, e.id, $2, s.event_seq - $3 + e.ord::int4, e.type, e.data
           FROM shipments s, unnest($4::text[], $5::text[], $6::jsonb[]) WITH ORDINALITY AS e(id, type, data, ord)
           WHERE s.tenant_id = $1 AND s.id = $2"#,
        tenant_id,
        shipment_id,
        n,
        &ids,
        &types as &[&str],
        &data,
    )
    .execute(conn)
    .await?;
    Ok(ids)
}

/// Events of a tenant in global order after `after_seq` (the `GET /v1/events` cursor).
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: &str,
    after_seq: i64,
    shipment_id: Option<&str>,
    event_type: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as!(
        EventRow,
        r#"SELECT tenant_id, id, seq, shipment_id, shipment_seq, type AS event_type,
                  data AS "data!: Json<Value>", created_at
           FROM events
           WHERE tenant_id = $1 AND seq > $2
             AND ($3::text IS NULL OR shipment_id = $3)
             AND ($4::text IS NULL OR type = $4)
           ORDER BY seq LIMIT $5"#,
        tenant_id,
        after_seq,
        shipment_id,
        event_type,
        limit,
    )
    .fetch_all(conn)
    .await
}
