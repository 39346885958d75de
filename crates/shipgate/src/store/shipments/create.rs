//! A new shipment, written in one statement with its first history entry, its
//! `shipment.created` event and the safety-net booking job.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::ShipmentRow;
use crate::domain::{BookingState, Metadata, ShipmentPlan, Status};
use crate::store::Actor;

pub struct NewShipment<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub connection_id: &'a str,
    pub carrier: &'a str,
    pub carrier_reference: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    /// The route, goods and the texts that go with them.
    pub plan: &'a ShipmentPlan,
    pub metadata: &'a Metadata,
    pub channel: Option<&'a RawValue>,
    pub booking_state: Option<BookingState>,
}

/// What is written with a new shipment besides the row itself.
pub struct Creation<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub detail: &'a serde_json::Value,
    /// The row's `created_at`, given so the `shipment.created` event built from it
    /// shows the same time as the stored row.
    pub at: DateTime<Utc>,
    /// The `shipment.created` event: id and data, as JSON text
    /// ([`view_event_text`](crate::service::events::view_event_text): written
    /// straight, with no `Value` tree to build and drop).
    pub event: (&'a str, &'a str),
    /// The plan's JSON values as text, as the caller wrote them for the event.
    pub json: PlanJson<'a>,
}

/// The JSON columns of a new shipment as text (`NewShipment::plan` and `metadata`
/// written once by the caller: the same text goes into `shipment.created`, so the
/// values are not serialized a second time for the insert).
pub struct PlanJson<'a> {
    pub stops: &'a str,
    pub parcels: &'a str,
    pub declared_value: Option<&'a str>,
    pub cod_amount: Option<&'a str>,
    pub metadata: &'a str,
}

/// Insert a shipment, its first history entry and its `shipment.created` event in one
/// statement (one round trip, atomic without an explicit transaction; the foreign keys
/// are checked at the end of the statement). A booking gets no job here: only one left
/// `pending` does (by its request, or adopted by `jobs::adopt_orphan_bookings` when the
/// request died), so a booking settled at once writes no job row at all.
///
/// The row written is [`NewShipment::as_row`] at `c.at`, which the caller already holds
/// (it built the `shipment.created` event from it): nothing is returned, so the server
/// sends no row back and the gateway decodes none (this function's instructions per
/// booking: 58k with the row, 28k without; callgrind, `bench/p3_cpu.sh`, issue 13). The
/// API tests in `tests/api/inserted_row.rs` read the row back and hold `as_row` to it.
pub async fn insert_with_history(conn: &mut PgConnection, s: &NewShipment<'_>, c: &Creation<'_>) -> sqlx::Result<()> {
    let (actor_type, actor_id) = c.actor.parts();
    sqlx::query!(
        r#"WITH h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail, at)
                      VALUES ($1, $2, $17, $18, $19, $20, $21)),
                e AS (INSERT INTO events (tenant_id, id, shipment_id, shipment_seq, type, data, created_at)
                      VALUES ($1, $22, $2, 1, 'shipment.created', $23::text::jsonb, $21))
           INSERT INTO shipments (tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number,
                                  service, stops, parcels, declared_value, cod_amount, notes, metadata, channel, booking_state,
                                  registration_key, event_seq, created_at, updated_at)
           -- A shipment created with a tracking number and a booking still to do is a
           -- registration (bookings get their number from the carrier; inbound pushes
           -- book nothing): one live registration per number and connection
           -- (shipments_registration_uq).
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10::text::jsonb, $11::text::jsonb, $12::text::jsonb,
                   $13, $14::text::jsonb, $15, $16,
                   CASE WHEN $16::text = 'pending' THEN upper(btrim($7::text)) END, 1, $21, $21)"#,
        s.tenant_id,
        s.id,
        s.plan.reference,
        s.connection_id,
        s.carrier,
        s.carrier_reference,
        s.tracking_number,
        s.plan.service,
        c.json.stops,
        c.json.parcels,
        c.json.declared_value,
        c.json.cod_amount,
        s.plan.notes,
        c.json.metadata,
        s.channel.map(Json) as _,
        s.booking_state.map(BookingState::as_str),
        actor_type,
        actor_id,
        c.action,
        Json(c.detail) as _,
        c.at,
        c.event.0,
        c.event.1,
    )
    .execute(conn)
    .await?;
    Ok(())
}

impl NewShipment<'_> {
    /// The row [`insert_with_history`] writes (before any carrier outcome): for building
    /// the `shipment.created` event in the same statement, and the row the caller goes on
    /// with. The columns it does not name take their defaults (`booking_attempts` 0,
    /// `status` pending, `sinks` {}, `documents` []).
    pub fn as_row(&self, at: DateTime<Utc>) -> ShipmentRow {
        ShipmentRow {
            tenant_id: self.tenant_id.to_owned(),
            id: self.id.to_owned(),
            reference: self.plan.reference.clone(),
            connection_id: self.connection_id.to_owned(),
            carrier: self.carrier.to_owned(),
            carrier_reference: self.carrier_reference.map(str::to_owned),
            tracking_number: self.tracking_number.map(str::to_owned),
            service: self.plan.service.clone(),
            stops: Json(self.plan.stops.clone()),
            parcels: Json(self.plan.parcels.clone()),
            declared_value: self.plan.declared_value.clone().map(Json),
            cod_amount: self.plan.cod_amount.clone().map(Json),
            notes: self.plan.notes.clone(),
            metadata: Json(self.metadata.clone()),
            channel: self.channel.map(|c| Json(c.to_owned())),
            booking_state: self.booking_state,
            booking_attempts: 0,
            booking_last_error: None,
            booked_at: None,
            status: Status::Pending,
            subtag: None,
            carrier_status: None,
            last_event: None,
            estimated_delivery: None,
            sinks: Json(serde_json::Map::new()),
            documents: Json(Vec::new()),
            proof_of_delivery: None,
            created_at: at,
            updated_at: at,
        }
    }
}
