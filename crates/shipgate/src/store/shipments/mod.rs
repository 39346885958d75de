//! Shipments, their tracking events and their audit history: the row and its reads
//! here; the insert (`create`), the booking outcome (`booking`), and the events and
//! history (`history`) beside it.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use crate::domain::{BookingState, DocumentLink, Metadata, Money, Parcel, ProofOfDelivery, ShipmentPlan, Status, Stop};
use crate::store::types::PgJson;

#[derive(Debug, Clone)]
pub struct ShipmentRow {
    pub tenant_id: String,
    pub id: String,
    pub reference: Option<String>,
    pub connection_id: String,
    pub carrier: String,
    pub carrier_reference: Option<String>,
    pub tracking_number: Option<String>,
    pub service: Option<String>,
    pub stops: Json<Vec<Stop>>,
    pub parcels: Json<Vec<Parcel>>,
    pub declared_value: Option<Json<Money>>,
    pub cod_amount: Option<Json<Money>>,
    pub notes: Option<String>,
    pub metadata: Json<Metadata>,
    /// The sinks the shipment reports to, as the carrier registry's `Channel` wrote it:
    /// the store does not know the carriers, the service reads it where it needs it.
    pub channel: Option<Json<Box<RawValue>>>,
    pub booking_state: Option<BookingState>,
    pub booking_attempts: i32,
    pub booking_last_error: Option<Json<serde_json::Value>>,
    pub booked_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub subtag: Option<String>,
    pub carrier_status: Option<String>,
    pub last_event: Option<Json<serde_json::Value>>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub sinks: Json<serde_json::Map<String, serde_json::Value>>,
    pub documents: Json<Vec<DocumentLink>>,
    pub proof_of_delivery: Option<Json<ProofOfDelivery>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ShipmentRow {
    /// The route, goods and texts as stored: what a carrier is sent.
    pub fn plan(&self) -> ShipmentPlan {
        ShipmentPlan {
            reference: self.reference.clone(),
            service: self.service.clone(),
            stops: self.stops.0.clone(),
            parcels: self.parcels.0.clone(),
            declared_value: self.declared_value.as_ref().map(|m| m.0.clone()),
            cod_amount: self.cod_amount.as_ref().map(|m| m.0.clone()),
            notes: self.notes.clone(),
        }
    }
}

/// A shipment as the API reads it (`GET /v1/shipments/{id}`, the list): the row with
/// its JSON columns as stored ([`PgJson`]), not read into the domain's types. The
/// workflows read a [`ShipmentRow`]; [`ShipmentDoc::into_row`] turns one into the other.
#[derive(Debug, Clone)]
pub struct ShipmentDoc {
    pub tenant_id: String,
    pub id: String,
    pub reference: Option<String>,
    pub connection_id: String,
    pub carrier: String,
    pub carrier_reference: Option<String>,
    pub tracking_number: Option<String>,
    pub service: Option<String>,
    pub stops: PgJson,
    pub parcels: PgJson,
    pub declared_value: Option<PgJson>,
    pub cod_amount: Option<PgJson>,
    pub notes: Option<String>,
    pub metadata: PgJson,
    pub channel: Option<PgJson>,
    pub booking_state: Option<BookingState>,
    pub booking_attempts: i32,
    pub booking_last_error: Option<PgJson>,
    pub booked_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub subtag: Option<String>,
    pub carrier_status: Option<String>,
    pub last_event: Option<PgJson>,
    pub estimated_delivery: Option<DateTime<Utc>>,
    pub sinks: PgJson,
    pub documents: PgJson,
    pub proof_of_delivery: Option<PgJson>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns of a [`ShipmentDoc`], in its fields' order (its `FromRow` reads them by
/// position). `query_doc!` spells the same list with the macro's type overrides.
pub(crate) const DOC_COLUMNS: &str = "tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number, \
     service, stops, parcels, declared_value, cod_amount, notes, metadata, channel, booking_state, booking_attempts, \
     booking_last_error, booked_at, status, subtag, carrier_status, last_event, estimated_delivery, sinks, documents, \
     proof_of_delivery, created_at, updated_at";

impl<'r> sqlx::FromRow<'r, PgRow> for ShipmentDoc {
    /// By position: a list reads 100 rows of 29 columns, and a lookup by name hashes
    /// the name each time.
    fn from_row(r: &'r PgRow) -> sqlx::Result<Self> {
        Ok(ShipmentDoc {
            tenant_id: r.try_get_unchecked(0)?,
            id: r.try_get_unchecked(1)?,
            reference: r.try_get_unchecked(2)?,
            connection_id: r.try_get_unchecked(3)?,
            carrier: r.try_get_unchecked(4)?,
            carrier_reference: r.try_get_unchecked(5)?,
            tracking_number: r.try_get_unchecked(6)?,
            service: r.try_get_unchecked(7)?,
            stops: r.try_get_unchecked(8)?,
            parcels: r.try_get_unchecked(9)?,
            declared_value: r.try_get_unchecked(10)?,
            cod_amount: r.try_get_unchecked(11)?,
            notes: r.try_get_unchecked(12)?,
            metadata: r.try_get_unchecked(13)?,
            channel: r.try_get_unchecked(14)?,
            booking_state: r.try_get_unchecked(15)?,
            booking_attempts: r.try_get_unchecked(16)?,
            booking_last_error: r.try_get_unchecked(17)?,
            booked_at: r.try_get_unchecked(18)?,
            status: r.try_get_unchecked(19)?,
            subtag: r.try_get_unchecked(20)?,
            carrier_status: r.try_get_unchecked(21)?,
            last_event: r.try_get_unchecked(22)?,
            estimated_delivery: r.try_get_unchecked(23)?,
            sinks: r.try_get_unchecked(24)?,
            documents: r.try_get_unchecked(25)?,
            proof_of_delivery: r.try_get_unchecked(26)?,
            created_at: r.try_get_unchecked(27)?,
            updated_at: r.try_get_unchecked(28)?,
        })
    }
}

impl ShipmentDoc {
    /// How many columns it reads ([`DOC_COLUMNS`]); a statement's own columns come after.
    pub const COLUMNS: usize = 29;

    /// The row the workflows read: the JSON columns read into the domain's types.
    pub fn into_row(self) -> serde_json::Result<ShipmentRow> {
        fn opt<T: serde::de::DeserializeOwned>(j: &Option<PgJson>) -> serde_json::Result<Option<Json<T>>> {
            j.as_ref().map(|j| j.parse().map(Json)).transpose()
        }
        Ok(ShipmentRow {
            stops: Json(self.stops.parse()?),
            parcels: Json(self.parcels.parse()?),
            declared_value: opt(&self.declared_value)?,
            cod_amount: opt(&self.cod_amount)?,
            metadata: Json(self.metadata.parse()?),
            channel: self.channel.map(|c| RawValue::from_string(c.get().to_owned()).map(Json)).transpose()?,
            booking_last_error: opt(&self.booking_last_error)?,
            last_event: opt(&self.last_event)?,
            sinks: Json(self.sinks.parse()?),
            documents: Json(self.documents.parse()?),
            proof_of_delivery: opt(&self.proof_of_delivery)?,
            tenant_id: self.tenant_id,
            id: self.id,
            reference: self.reference,
            connection_id: self.connection_id,
            carrier: self.carrier,
            carrier_reference: self.carrier_reference,
            tracking_number: self.tracking_number,
            service: self.service,
            notes: self.notes,
            booking_state: self.booking_state,
            booking_attempts: self.booking_attempts,
            booked_at: self.booked_at,
            status: self.status,
            subtag: self.subtag,
            carrier_status: self.carrier_status,
            estimated_delivery: self.estimated_delivery,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `query_as!(ShipmentDoc, ...)`, as `query_shipment!` for the row.
macro_rules! query_doc {
    ($prefix:literal, $suffix:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ShipmentDoc,
            $prefix + r#" tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number, service,
               stops AS "stops!: PgJson", parcels AS "parcels!: PgJson",
               declared_value AS "declared_value: PgJson", cod_amount AS "cod_amount: PgJson",
               notes, metadata AS "metadata!: PgJson", channel AS "channel: PgJson",
               booking_state AS "booking_state: BookingState", booking_attempts,
               booking_last_error AS "booking_last_error: PgJson",
               booked_at, status AS "status!: Status", subtag, carrier_status, last_event AS "last_event: PgJson",
               estimated_delivery, sinks AS "sinks!: PgJson", documents AS "documents!: PgJson",
               proof_of_delivery AS "proof_of_delivery: PgJson", created_at, updated_at "# + $suffix
            $(, $arg)*
        )
    };
}

/// `query_as!(ShipmentRow, ...)` with the column list (jsonb columns typed) spliced in
/// between a prefix and a suffix, so every statement reads the same columns.
macro_rules! query_shipment {
    ($prefix:literal, $suffix:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ShipmentRow,
            $prefix + r#" tenant_id, id, reference, connection_id, carrier, carrier_reference, tracking_number, service,
               stops AS "stops!: Json<Vec<Stop>>", parcels AS "parcels!: Json<Vec<Parcel>>",
               declared_value AS "declared_value: Json<Money>", cod_amount AS "cod_amount: Json<Money>",
               notes, metadata AS "metadata!: Json<Metadata>", channel AS "channel: Json<Box<RawValue>>",
               booking_state AS "booking_state: BookingState", booking_attempts,
               booking_last_error AS "booking_last_error: Json<serde_json::Value>",
               booked_at, status AS "status!: Status", subtag, carrier_status, last_event AS "last_event: Json<serde_json::Value>",
               estimated_delivery, sinks AS "sinks!: Json<serde_json::Map<String, serde_json::Value>>",
               documents AS "documents!: Json<Vec<DocumentLink>>",
               proof_of_delivery AS "proof_of_delivery: Json<ProofOfDelivery>", created_at, updated_at "# + $suffix
            $(, $arg)*
        )
    };
}

// Statements of other store modules that return a shipment row (inbound pushes).
pub(crate) use query_shipment;

mod booking;
mod create;
mod history;

pub use booking::{BookedEvent, BookingUpdate, mark_booked, set_booking};
pub use create::{Creation, NewShipment, PlanJson, insert_with_history};
pub use history::{EventRow, HistoryRow, NewEvent, insert_event, insert_history, list_events, list_history};

pub async fn get(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<ShipmentRow>> {
    query_shipment!("SELECT", "FROM shipments WHERE tenant_id = $1 AND id = $2", tenant_id, id)
        .fetch_optional(conn)
        .await
}

/// The tenant's shipment as the API reads it.
pub async fn get_doc(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<ShipmentDoc>> {
    query_doc!("SELECT", "FROM shipments WHERE tenant_id = $1 AND id = $2", tenant_id, id).fetch_optional(conn).await
}

/// The shipments named by the pairs (`tenants[i]`, `ids[i]`) (lists of one length), in
/// one statement: the rows found, in no particular order, each once however often it
/// was asked for. The coalesced reads of `service::shipments::reads`; one primary-key
/// probe per distinct pair.
pub async fn get_many(conn: &mut PgConnection, tenants: &[&str], ids: &[&str]) -> sqlx::Result<Vec<ShipmentDoc>> {
    query_doc!(
        "SELECT",
        "FROM shipments WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        tenants as &[&str],
        ids as &[&str]
    )
    .fetch_all(conn)
    .await
}

/// The live (pending or booked) registration of `tracking_number` on a connection:
/// the shipment `shipments_registration_uq` lets exist at most once.
pub async fn get_registration(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    tracking_number: &str,
) -> sqlx::Result<Option<ShipmentRow>> {
    query_shipment!(
        "SELECT",
        "FROM shipments WHERE tenant_id = $1 AND connection_id = $2 AND registration_key = upper(btrim($3))
           AND booking_state IN ('pending', 'booked')",
        tenant_id,
        connection_id,
        tracking_number
    )
    .fetch_optional(conn)
    .await
}

/// Make a shipment its connection's live registration of its tracking number, as a
/// registration through the API would be (`shipments_registration_uq`): a shipment
/// imported from a carrier's list of registered numbers is then found, not duplicated,
/// when the same number is registered again. False when it has no tracking number or
/// the number is already registered on the connection (the index refuses a second).
pub async fn keep_as_registration(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE shipments s SET registration_key = upper(btrim(s.tracking_number))
         WHERE s.tenant_id = $1 AND s.id = $2 AND s.tracking_number IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM shipments o
                           WHERE o.tenant_id = s.tenant_id AND o.connection_id = s.connection_id
                             AND o.registration_key = upper(btrim(s.tracking_number))
                             AND o.booking_state IN ('pending', 'booked'))",
        tenant_id,
        id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Read and lock the row for the rest of the caller's transaction.
pub async fn get_for_update(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<ShipmentRow>> {
    query_shipment!("SELECT", "FROM shipments WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenant_id, id)
        .fetch_optional(conn)
        .await
}

/// The tenant's shipment with this tracking number, locked for the caller's
/// transaction; one on `connection_id` first (inbound pushes attach by AWB).
pub async fn get_by_tracking_for_update(
    conn: &mut PgConnection,
    tenant_id: &str,
    tracking_number: &str,
    connection_id: &str,
) -> sqlx::Result<Option<ShipmentRow>> {
    query_shipment!(
        "SELECT",
        "FROM shipments WHERE tenant_id = $1 AND tracking_number = $2
         ORDER BY (connection_id = $3) DESC, id LIMIT 1 FOR UPDATE",
        tenant_id,
        tracking_number,
        connection_id
    )
    .fetch_optional(conn)
    .await
}

/// [`get_by_tracking_for_update`] for many numbers of one connection in one round
/// trip: each number's shipment (when there is one), locked in the order of `numbers`
/// (the caller sorts them, so concurrent callers lock in one order).
pub async fn lock_by_tracking_numbers(
    conn: &mut PgConnection,
    tenant_id: &str,
    numbers: &[&str],
    connection_id: &str,
) -> sqlx::Result<Vec<ShipmentRow>> {
    query_shipment!(
        "SELECT",
        "FROM unnest($2::text[]) WITH ORDINALITY AS n(number, ord)
         CROSS JOIN LATERAL (SELECT * FROM shipments WHERE tenant_id = $1 AND tracking_number = n.number
                             ORDER BY (connection_id = $3) DESC, id LIMIT 1 FOR UPDATE) s
         ORDER BY n.ord",
        tenant_id,
        numbers as &[&str],
        connection_id
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    pub status: Option<Status>,
    pub carrier: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Keyset cursor: ids sort by creation time (UUIDv7), newest first.
    pub before_id: Option<&'a str>,
}

/// The list is built with only the filters given. A single prepared statement with
/// `($n IS NULL OR col = $n)` for every optional filter gets a generic plan that
/// estimates one matching row, so Postgres scans and sorts the whole tenant (measured:
/// 42 ms for a page of 100 over 7k rows, QUALITY P4); without the unused filters the
/// primary key (tenant_id, id) is walked backwards and stops after one page. Values are
/// always bound, never spliced. The columns are the same as every checked query's.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: &str,
    f: &ListFilter<'_>,
    limit: i64,
) -> sqlx::Result<Vec<ShipmentDoc>> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("SELECT ");
    q.push(DOC_COLUMNS).push(" FROM shipments WHERE tenant_id = ");
    q.push_bind(tenant_id);
    let text_filters = [
        (" AND status = ", f.status.map(Status::as_str)),
        (" AND carrier = ", f.carrier),
        (" AND connection_id = ", f.connection_id),
        (" AND reference = ", f.reference),
        (" AND tracking_number = ", f.tracking_number),
    ];
    for (clause, value) in text_filters {
        if let Some(v) = value {
            q.push(clause).push_bind(v);
        }
    }
    if let Some(t) = f.created_after {
        q.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = f.created_before {
        q.push(" AND created_at < ").push_bind(t);
    }
    // Filtered by creation time, the list is walked in (created_at, id) order on
    // shipments_created_idx, so a page stops after `limit` rows however wide the range
    // (ordered by id alone, Postgres walked the primary key through every newer row:
    // 420 ms for a two-month range at 1M shipments). Ids follow creation time anyway, so
    // the order is the same "newest first"; the cursor is still the last id.
    let by_time = f.created_after.is_some() || f.created_before.is_some();
    if let Some(id) = f.before_id {
        if by_time {
            q.push(" AND (created_at, id) < (SELECT c.created_at, c.id FROM shipments c WHERE c.tenant_id = ")
                .push_bind(tenant_id)
                .push(" AND c.id = ")
                .push_bind(id)
                .push(")");
        } else {
            q.push(" AND id < ").push_bind(id);
        }
    }
    q.push(if by_time { " ORDER BY created_at DESC, id DESC LIMIT " } else { " ORDER BY id DESC LIMIT " })
        .push_bind(limit);
    // Collected into a vector sized for the page: grown from empty, its rows (about
    // 700 bytes each) were copied seven times over.
    let mut rows = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(1000));
    let mut stream = q.build_query_as::<ShipmentDoc>().fetch(conn);
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
    }
    Ok(rows)
}

/// What a client can change of a shipment, written together.
pub struct DetailsUpdate<'a> {
    pub plan: &'a ShipmentPlan,
    pub metadata: &'a Metadata,
    pub channel: Option<&'a RawValue>,
}

pub async fn set_details(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    d: &DetailsUpdate<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE shipments SET reference = $3, service = $4, stops = $5, parcels = $6, declared_value = $7,
                  cod_amount = $8, notes = $9, metadata = $10, channel = $11, updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
        d.plan.reference,
        d.plan.service,
        Json(&d.plan.stops) as _,
        Json(&d.plan.parcels) as _,
        d.plan.declared_value.as_ref().map(Json) as _,
        d.plan.cod_amount.as_ref().map(Json) as _,
        d.plan.notes,
        Json(d.metadata) as _,
        d.channel.map(Json) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    status: Status,
    subtag: Option<&str>,
    carrier_status: Option<&str>,
    last_event: Option<&serde_json::Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE shipments SET status = $3, subtag = $4, carrier_status = coalesce($5, carrier_status),
                  last_event = coalesce($6, last_event), updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
        status.as_str(),
        subtag,
        carrier_status,
        last_event.map(Json) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_documents(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    documents: &[DocumentLink],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE shipments SET documents = $3 WHERE tenant_id = $1 AND id = $2 AND documents IS DISTINCT FROM $3",
        tenant_id,
        id,
        Json(documents) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Keep the proof of delivery; false when it was already this one.
pub async fn set_proof(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    proof: &ProofOfDelivery,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE shipments SET proof_of_delivery = $3, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND proof_of_delivery IS DISTINCT FROM $3",
        tenant_id,
        id,
        Json(proof) as _
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_estimated_delivery(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!("UPDATE shipments SET estimated_delivery = $3 WHERE tenant_id = $1 AND id = $2", tenant_id, id, at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn touch_carrier_status(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    carrier_status: Option<&str>,
    last_event: Option<&serde_json::Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE shipments SET carrier_status = coalesce($3, carrier_status), last_event = coalesce($4, last_event),
                  updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
        carrier_status,
        last_event.map(Json) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}
