//! Inbound pushes and webhooks as received, the status-mapping table (defaults +
//! tenant overrides) and the codes seen without a mapping.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::Actor;
use super::connections::ConnectionRow;
use super::shipments::ShipmentRow;
use serde_json::value::RawValue;

use crate::domain::{BookingState, DocumentLink, Metadata, Money, Parcel, ProofOfDelivery, Status, Stop};

/// A connection by id alone: inbound pushes carry only the id in their URL (the
/// tenant follows from the connection).
pub async fn connection_by_id(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"SELECT tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                  settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                  status, status_detail, verified_at, created_at, updated_at
           FROM connections WHERE id = $1 AND deleted_at IS NULL"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Serialize the first pushes of an AWB the tenant has no shipment for, until the
/// caller's transaction ends, so "find the shipment by AWB, else create it" cannot
/// create two. The caller looks again after taking it (a new statement sees what the
/// previous holder committed).
pub async fn lock_awb(conn: &mut PgConnection, tenant_id: &str, awb: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('shipgate:awb:' || $1 || ':' || $2, 0))",
        tenant_id,
        awb
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// One pushed scan for [`record_push`].
pub struct PushWrite<'a> {
    pub tenant_id: &'a str,
    pub connection_id: &'a str,
    pub awb: &'a str,
    pub status_update_number: &'a str,
    pub shipment_id: &'a str,
    pub payload: &'a Value,
    pub event: &'a super::shipments::NewEvent<'a>,
    pub status: Option<(Status, Option<&'a str>)>,
    pub carrier_status: Option<&'a str>,
    pub last_event: Option<&'a Value>,
    pub history: &'a [(&'a str, Value)],
    /// How many outbound events the caller writes for this scan with
    /// [`events::emit_counted`](super::events::emit_counted): counted on the row here.
    pub events: i32,
}

/// One pushed scan in one statement (one round trip): the raw push, kept once per
/// (connection, awb, status_update_number); only when it is new, the tracking event
/// (deduplicated); only when that is new, the shipment's status (when `status` is
/// given), carrier status and last event, and the history rows (`history`: action and
/// detail pairs, in order), and the shipment's event counter moved by `events` (so the
/// row is written once per scan). Returns the updated shipment, or None when the push or its
/// event was stored before (nothing changed). The caller holds the shipment's row lock,
/// so pushes for one shipment are applied one at a time.
pub async fn record_push(conn: &mut PgConnection, w: &PushWrite<'_>) -> sqlx::Result<Option<ShipmentRow>> {
    let (actor_type, actor_id) = Actor::CarrierPush.parts();
    let actions: Vec<&str> = w.history.iter().map(|(a, _)| *a).collect();
    let details: Vec<Value> = w.history.iter().map(|(_, d)| d.clone()).collect();
    let e = w.event;
    super::shipments::query_shipment!(
        r#"WITH p AS (INSERT INTO inbound_pushes (tenant_id, connection_id, awb, status_update_number, shipment_id, payload)
                      VALUES ($1, $20, $21, $22, $2, $24)
                      ON CONFLICT (tenant_id, shipment_id, connection_id, awb, status_update_number) DO NOTHING
                      RETURNING 1),
                ev AS (INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, subtag, message, location,
                                                    raw_code, raw_text, source, dedup_key, actor)
                       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $23 FROM p
                       ON CONFLICT (tenant_id, shipment_id, dedup_key) DO NOTHING RETURNING id),
                u AS (UPDATE shipments SET status = coalesce($12, status),
                             subtag = CASE WHEN $12::text IS NULL THEN subtag ELSE $13 END,
                             carrier_status = coalesce($14, carrier_status), last_event = coalesce($15, last_event),
                             event_seq = event_seq + $25, updated_at = now()
                      WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM ev)
                      RETURNING *),
                h AS (INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
                      SELECT u.tenant_id, u.id, $16, $17, a.action, a.detail
                      FROM u, unnest($18::text[], $19::jsonb[]) WITH ORDINALITY AS a(action, detail, ord)
                      ORDER BY a.ord)
           SELECT"#,
        "FROM u",
        w.tenant_id,
        w.shipment_id,
        e.occurred_at,
        e.status.map(Status::as_str),
        e.subtag,
        e.message,
        e.location.map(Json) as _,
        e.raw_code,
        e.raw_text,
        e.source,
        e.dedup_key,
        w.status.map(|s| s.0.as_str()),
        w.status.and_then(|s| s.1),
        w.carrier_status,
        w.last_event.map(Json) as _,
        actor_type,
        actor_id,
        &actions as &[&str],
        &details,
        w.connection_id,
        w.awb,
        w.status_update_number,
        e.actor,
        Json(w.payload) as _,
        w.events,
    )
    .fetch_optional(conn)
    .await
}

/// A repeat of a push stored under shipment `shipment_id` (same connection, awb,
/// status_update_number): when its payload differs from the stored one, keep it in
/// `inbound_push_changes` (counted per distinct payload). True when it differed. The
/// stored push stays the one applied.
pub async fn record_changed_repush(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    connection_id: &str,
    awb: &str,
    status_update_number: &str,
    payload: &Value,
) -> sqlx::Result<bool> {
    let changed = sqlx::query_scalar!(
        r#"INSERT INTO inbound_push_changes (tenant_id, connection_id, awb, status_update_number, payload_hash, payload)
           SELECT p.tenant_id, p.connection_id, p.awb, p.status_update_number,
                  sha256(convert_to($5::jsonb::text, 'UTF8')), $5::jsonb
           FROM inbound_pushes p
           WHERE p.tenant_id = $1 AND p.shipment_id = $6 AND p.connection_id = $2 AND p.awb = $3
             AND p.status_update_number = $4 AND p.payload <> $5::jsonb
           ON CONFLICT (tenant_id, connection_id, awb, status_update_number, payload_hash)
           DO UPDATE SET count = inbound_push_changes.count + 1, last_seen = now()
           RETURNING 1 AS "one!""#,
        tenant_id,
        connection_id,
        awb,
        status_update_number,
        Json(payload) as _,
        shipment_id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(changed.is_some())
}

pub async fn webhook_seen(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    event_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM inbound_webhooks WHERE tenant_id = $1 AND connection_id = $2 AND event_id = $3)
           AS "seen!""#,
        tenant_id,
        connection_id,
        event_id
    )
    .fetch_one(conn)
    .await
}

/// The id of the connection's shipment with this tracking number.
pub async fn shipment_on_connection(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    tracking_number: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT id FROM shipments WHERE tenant_id = $1 AND tracking_number = $2 AND connection_id = $3
         ORDER BY id LIMIT 1",
        tenant_id,
        tracking_number,
        connection_id
    )
    .fetch_optional(conn)
    .await
}

/// Keep an AfterShip webhook unless its event_id was seen; false for a duplicate.
#[allow(clippy::too_many_arguments)]
pub async fn keep_webhook(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    event_id: &str,
    event: Option<&str>,
    tracking_number: Option<&str>,
    shipment_id: Option<&str>,
    payload: &Value,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO inbound_webhooks (tenant_id, connection_id, event_id, event, tracking_number, shipment_id, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id, connection_id, event_id) DO NOTHING
           RETURNING 1 AS "one!""#,
        tenant_id,
        connection_id,
        event_id,
        event,
        tracking_number,
        shipment_id,
        Json(payload) as _,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

// ---- status mappings ----

#[derive(Debug, Clone)]
pub struct MappingRow {
    pub carrier: String,
    pub code: String,
    pub after_code: String,
    /// The normalized status the code maps to (the `tag` column).
    pub tag: Status,
    pub subtag: Option<String>,
    pub description: String,
    /// "default" or "tenant".
    pub source: String,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Defaults merged with the tenant's overrides (an override hides the default with the
/// same carrier, code and after_code).
pub async fn list_mappings(
    conn: &mut PgConnection,
    tenant_id: &str,
    carrier: Option<&str>,
) -> sqlx::Result<Vec<MappingRow>> {
    sqlx::query_as!(
        MappingRow,
        r#"SELECT carrier AS "carrier!", code AS "code!", after_code AS "after_code!", tag AS "tag!: Status", subtag,
                  description AS "description!", source AS "source!", updated_at
           FROM (
               SELECT carrier, code, after_code, tag, subtag, description, 'tenant' AS source, updated_at
               FROM status_mapping_overrides WHERE tenant_id = $1 AND ($2::text IS NULL OR carrier = $2)
               UNION ALL
               SELECT d.carrier, d.code, d.after_code, d.tag, d.subtag, d.description, 'default', NULL::timestamptz
               FROM status_mapping_defaults d
               WHERE ($2::text IS NULL OR d.carrier = $2)
                 AND NOT EXISTS (SELECT 1 FROM status_mapping_overrides o
                                 WHERE o.tenant_id = $1 AND o.carrier = d.carrier AND o.code = d.code
                                   AND o.after_code = d.after_code)) m
           ORDER BY carrier, length(code), code, after_code"#,
        tenant_id,
        carrier,
    )
    .fetch_all(conn)
    .await
}

pub struct MappingIn<'a> {
    pub carrier: &'a str,
    pub code: &'a str,
    pub after_code: &'a str,
    pub tag: Status,
    pub subtag: Option<&'a str>,
    pub description: &'a str,
}

pub async fn upsert_override(conn: &mut PgConnection, tenant_id: &str, m: &MappingIn<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO status_mapping_overrides (tenant_id, carrier, code, after_code, tag, subtag, description)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id, carrier, code, after_code)
           DO UPDATE SET tag = EXCLUDED.tag, subtag = EXCLUDED.subtag, description = EXCLUDED.description,
                         updated_at = now()"#,
        tenant_id,
        m.carrier,
        m.code,
        m.after_code,
        m.tag.as_str(),
        m.subtag,
        m.description,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Count a code seen without a mapping (for ops).
pub async fn note_unmapped(
    conn: &mut PgConnection,
    tenant_id: &str,
    carrier: &str,
    code: &str,
    text: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO unmapped_codes (tenant_id, carrier, code, last_text) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, carrier, code)
           DO UPDATE SET count = unmapped_codes.count + 1, last_text = coalesce(EXCLUDED.last_text, unmapped_codes.last_text),
                         last_seen = now()"#,
        tenant_id,
        carrier,
        code,
        text,
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct UnmappedRow {
    pub carrier: String,
    pub code: String,
    pub last_text: Option<String>,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Codes seen without a mapping that still have none (an override added since hides them).
pub async fn list_unmapped(
    conn: &mut PgConnection,
    tenant_id: &str,
    carrier: Option<&str>,
) -> sqlx::Result<Vec<UnmappedRow>> {
    sqlx::query_as!(
        UnmappedRow,
        r#"SELECT u.carrier, u.code, u.last_text, u.count, u.first_seen, u.last_seen
           FROM unmapped_codes u
           WHERE u.tenant_id = $1 AND ($2::text IS NULL OR u.carrier = $2)
             AND NOT EXISTS (SELECT 1 FROM status_mapping_overrides o
                             WHERE o.tenant_id = u.tenant_id AND o.carrier = u.carrier AND o.code = u.code
                               AND o.after_code = '')
           ORDER BY u.last_seen DESC, u.code LIMIT 1000"#,
        tenant_id,
        carrier,
    )
    .fetch_all(conn)
    .await
}
