//! Deliveries and their attempts as the API lists them, and the manual re-sends: a
//! retry of one delivery, a replay of an endpoint's failed ones.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub tenant_id: String,
    pub id: String,
    pub seq: i64,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub state: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An endpoint's deliveries, newest first, before `before_seq` (the cursor).
pub async fn list_deliveries(
    conn: &mut PgConnection,
    tenant_id: &str,
    endpoint_id: &str,
    state: Option<&str>,
    before_seq: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.tenant_id, d.id, d.seq, d.endpoint_id, d.event_id, ev.type AS event_type, d.state,
                  d.next_attempt_at, d.attempts, d.last_status, d.last_error, d.created_at, d.updated_at,
                  d.delivered_at
           FROM webhook_deliveries d JOIN events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
           WHERE d.tenant_id = $1 AND d.endpoint_id = $2 AND ($3::text IS NULL OR d.state = $3)
             AND ($4::int8 IS NULL OR d.seq < $4)
           ORDER BY d.seq DESC LIMIT $5"#,
        tenant_id,
        endpoint_id,
        state,
        before_seq,
        limit,
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub response_status: Option<i32>,
    pub error_code: Option<String>,
    pub response_excerpt: Option<String>,
}

pub async fn attempts_of(
    conn: &mut PgConnection,
    tenant_id: &str,
    delivery_ids: &[String],
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as!(
        AttemptRow,
        r#"SELECT delivery_id, attempt, started_at, duration_ms, response_status, error_code, response_excerpt
           FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id = ANY($2)
           ORDER BY delivery_id, attempt"#,
        tenant_id,
        delivery_ids,
    )
    .fetch_all(conn)
    .await
}

/// Queue one delivery for an attempt now, whatever its state (a manual retry): one
/// more attempt is allowed, and a worker holding the old claim can no longer record.
/// Returns the endpoint id, or None when the delivery does not exist.
pub async fn retry_now(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<String>> {
    let r = sqlx::query_scalar!(
        r#"UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now(), claim_token = NULL,
                  max_attempts = attempts + 1, updated_at = now()
           WHERE tenant_id = $1 AND id = $2
           RETURNING endpoint_id"#,
        tenant_id,
        id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(r)
}

pub async fn delivery_endpoint(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT endpoint_id FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2", tenant_id, id)
        .fetch_optional(conn)
        .await
}

/// Replay: queue every failed or cancelled delivery of an endpoint created at or after
/// `since` for one more attempt now. Returns how many.
pub async fn replay_failed(
    conn: &mut PgConnection,
    tenant_id: &str,
    endpoint_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = now(), claim_token = NULL,
                  max_attempts = attempts + 1, updated_at = now()
           WHERE tenant_id = $1 AND endpoint_id = $2 AND state IN ('failed', 'cancelled') AND created_at >= $3"#,
        tenant_id,
        endpoint_id,
        since,
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// When the earliest pending delivery is due.
pub async fn next_due(conn: &mut PgConnection) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        r#"SELECT next_attempt_at FROM webhook_deliveries WHERE state = 'pending'
           ORDER BY next_attempt_at, seq LIMIT 1"#
    )
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

pub async fn get_delivery(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.tenant_id, d.id, d.seq, d.endpoint_id, d.event_id, ev.type AS event_type, d.state,
                  d.next_attempt_at, d.attempts, d.last_status, d.last_error, d.created_at, d.updated_at,
                  d.delivered_at
           FROM webhook_deliveries d JOIN events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
           WHERE d.tenant_id = $1 AND d.id = $2"#,
        tenant_id,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// The deliveries of a shipment's events (the console's timeline), oldest first, at most `limit`.
pub async fn list_for_shipment(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.tenant_id, d.id, d.seq, d.endpoint_id, d.event_id, ev.type AS event_type, d.state,
                  d.next_attempt_at, d.attempts, d.last_status, d.last_error, d.created_at, d.updated_at,
                  d.delivered_at
           FROM events ev JOIN webhook_deliveries d ON d.tenant_id = ev.tenant_id AND d.event_id = ev.id
           WHERE ev.tenant_id = $1 AND ev.shipment_id = $2
           ORDER BY d.seq LIMIT $3"#,
        tenant_id,
        shipment_id,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Delete up to `limit` of a tenant's deliveries (any state) of the events with ids in
/// `[from, to)`, lowest event id first: retention removes a month's deliveries before it
/// drops the month's events (no foreign key ties them: a referenced partition could not
/// be dropped). Returns how many went and the highest event id among them: the next
/// call starts there (so it does not walk again over the index entries just deleted),
/// until fewer than `limit` went. Short statements, so no transaction stays open long.
pub async fn delete_for_events(
    conn: &mut PgConnection,
    tenant_id: &str,
    from: &str,
    to: &str,
    limit: i64,
) -> sqlx::Result<(i64, Option<String>)> {
    let r = sqlx::query!(
        r#"WITH v AS (
               SELECT tenant_id, id, event_id FROM webhook_deliveries
               WHERE tenant_id = $1 AND event_id >= $2 AND event_id < $3
               ORDER BY event_id LIMIT $4
           ), d AS (
               DELETE FROM webhook_deliveries w USING v WHERE w.tenant_id = v.tenant_id AND w.id = v.id
               RETURNING v.event_id
           )
           SELECT count(*) AS "deleted!", max(event_id) AS last FROM d"#,
        tenant_id,
        from,
        to,
        limit,
    )
    .fetch_one(conn)
    .await?;
    Ok((r.deleted, r.last))
}
