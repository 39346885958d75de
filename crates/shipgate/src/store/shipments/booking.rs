//! The outcome of a booking attempt: booked (one statement with its exchange, history
//! and event), or the booking state with the carrier's error.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

use super::ShipmentDoc;
use crate::domain::{BookingState, Exchange, Status};
use crate::store::Actor;
use crate::store::types::PgJson;

/// The carrier accepted the booking: state, numbers, `pending` → `info_received`, the
/// history entry, the carrier exchange that did it (when given), and the updated row, in
/// one statement: one round trip and, outside a transaction, one commit (QUALITY P3).
///
/// The row comes back as the API reads it ([`ShipmentDoc`]: its JSON columns as stored,
/// not read into the domain's types): it is the booking's answer, written as the reads
/// write theirs. Reading the stops, parcels and the other JSON values into their types
/// only to write them out again cost about 37k instructions per booking; with the
/// booking's JSON values serialized once (`service::shipments::create`), a booking went
/// from 401k to 342k (callgrind, `bench/p3_cpu.sh`). It is the row as this statement
/// left it, so the answer shows what another writer changed meanwhile, as before.
#[allow(clippy::too_many_arguments)]
pub async fn mark_booked(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    tracking_number: Option<&str>,
    carrier_reference: Option<&str>,
    actor: &Actor,
    detail: &serde_json::Value,
    exchange: Option<&Exchange>,
    booked: &BookedEvent<'_>,
) -> sqlx::Result<ShipmentDoc> {
    let (actor_type, actor_id) = actor.parts();
    let event = booked.event.as_ref();
    query_doc!(
        r#"WITH x AS (INSERT INTO carrier_exchanges (tenant_id, connection_id, shipment_id, carrier, operation, method, url,
                                                     request_body, response_status, response_body, duration_ms, error, created_at)
                      SELECT $1, $8::text, $2, $9::text, $10::text, $11::text, $12::text, $13::text, $14::int4, $15::text,
                             $16::int4, $17::text, $18::timestamptz
                      WHERE $8::text IS NOT NULL),
                u AS (UPDATE shipments SET booking_state = 'booked', booking_last_error = NULL,
                             booking_attempts = booking_attempts + 1, booked_at = coalesce(booked_at, $19),
                             tracking_number = coalesce($3, tracking_number),
                             carrier_reference = coalesce($4, carrier_reference),
                             status = CASE WHEN status = 'pending' THEN 'info_received' ELSE status END,
                             event_seq = event_seq + CASE WHEN $20::text IS NULL THEN 0 ELSE 1 END,
                             updated_at = $19
                      WHERE tenant_id = $1 AND id = $2
                      RETURNING *),
                -- shipment.booked, its data built by the caller from the row as it will be;
                -- the fields another writer could have changed meanwhile are taken from u
                e AS (INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data)
                      SELECT tenant_id, $20, id, event_seq, 'shipment.booked',
                             jsonb_set(jsonb_set(jsonb_set(jsonb_set($21::text::jsonb,
                                 '{shipment,booking,attempts}', to_jsonb(booking_attempts)),
                                 '{shipment,status}', to_jsonb(status)),
                                 '{shipment,tracking_number}', coalesce(to_jsonb(tracking_number), 'null'::jsonb)),
                                 '{shipment,carrier_reference}', coalesce(to_jsonb(carrier_reference), 'null'::jsonb))
                      FROM u WHERE $20::text IS NOT NULL),
                h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
                      SELECT tenant_id, id, $5, $6, 'booked', $7 FROM u)
           SELECT"#,
        "FROM u",
        tenant_id,
        id,
        tracking_number,
        carrier_reference,
        actor_type,
        actor_id,
        Json(detail) as _,
        exchange.map(|x| x.connection_id.as_str()),
        exchange.map(|x| x.carrier),
        exchange.map(|x| x.operation),
        exchange.map(|x| x.method.as_str()),
        exchange.map(|x| x.url.as_str()),
        exchange.and_then(|x| x.request_body.as_deref()),
        exchange.and_then(|x| x.response_status),
        exchange.and_then(|x| x.response_body.as_deref()),
        exchange.map(|x| x.duration_ms),
        exchange.and_then(|x| x.error.as_deref()),
        exchange.map(|x| x.at),
        booked.at,
        event.map(|e| e.0),
        event.map(|e| e.1),
    )
    .fetch_one(conn)
    .await
}

/// The time of a booking and, when the caller writes it in the same statement, the
/// `shipment.booked` event (id, data).
pub struct BookedEvent<'a> {
    pub at: DateTime<Utc>,
    /// `shipment.booked`: id and data as JSON text (see [`super::Creation::event`]).
    pub event: Option<(&'a str, &'a str)>,
}

/// The booking outcome fields, written together.
pub struct BookingUpdate<'a> {
    pub state: BookingState,
    pub last_error: Option<&'a serde_json::Value>,
    pub booked: bool,
    pub tracking_number: Option<&'a str>,
    pub carrier_reference: Option<&'a str>,
    pub count_attempt: bool,
}

pub async fn set_booking(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    b: &BookingUpdate<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE shipments SET booking_state = $3, booking_last_error = $4,
                  booking_attempts = booking_attempts + CASE WHEN $7 THEN 1 ELSE 0 END,
                  booked_at = CASE WHEN $5 THEN coalesce(booked_at, now()) ELSE booked_at END,
                  tracking_number = coalesce($6, tracking_number),
                  carrier_reference = coalesce($8, carrier_reference), updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
        b.state.as_str(),
        b.last_error.map(Json) as _,
        b.booked,
        b.tracking_number,
        b.count_attempt,
        b.carrier_reference,
    )
    .execute(conn)
    .await?;
    Ok(())
}
