//! Sink submissions: the durable to-do list of tracking numbers to hand to sinks
//! (`sink` is the sink carrier's slug, e.g. ecomdash).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

/// Queue a tracking number for a sink, superseding older pending numbers of the same
/// shipment (the number changed). Idempotent: the same number is queued once.
pub async fn enqueue(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    sink: &str,
    connection_id: &str,
    tracking_number: &str,
) -> sqlx::Result<bool> {
    sqlx::query!(
        "UPDATE sink_submissions SET state = 'superseded', updated_at = now()
         WHERE tenant_id = $1 AND shipment_id = $2 AND sink = $3 AND state = 'pending' AND tracking_number <> $4",
        tenant_id,
        shipment_id,
        sink,
        tracking_number
    )
    .execute(&mut *conn)
    .await?;
    let r = sqlx::query!(
        "INSERT INTO sink_submissions (tenant_id, shipment_id, sink, connection_id, tracking_number)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, shipment_id, sink, tracking_number) DO NOTHING",
        tenant_id,
        shipment_id,
        sink,
        connection_id,
        tracking_number
    )
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub tenant_id: String,
    pub id: i64,
    pub shipment_id: String,
    pub sink: String,
    pub connection_id: String,
    pub tracking_number: String,
    pub attempts: i32,
}

/// Claim due submissions under a lease; a worker that dies loses them after the lease.
pub async fn claim_due(conn: &mut PgConnection, limit: i64, lease_secs: f64) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"UPDATE sink_submissions s SET locked_until = now() + make_interval(secs => $2), attempts = attempts + 1,
                  updated_at = now()
           FROM (SELECT tenant_id, id FROM sink_submissions
                 WHERE state = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
                 ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
           WHERE s.tenant_id = due.tenant_id AND s.id = due.id
           RETURNING s.tenant_id, s.id, s.shipment_id, s.sink, s.connection_id, s.tracking_number, s.attempts"#,
        limit,
        lease_secs
    )
    .fetch_all(conn)
    .await
}

pub async fn mark_submitted(conn: &mut PgConnection, tenant_id: &str, id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE sink_submissions SET state = 'submitted', submitted_at = now(), locked_until = NULL, last_error = NULL,
                updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        tenant_id,
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_failed(conn: &mut PgConnection, tenant_id: &str, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE sink_submissions SET state = 'failed', locked_until = NULL, last_error = $3, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        tenant_id,
        id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn retry_later(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: i64,
    at: DateTime<Utc>,
    error: Option<&str>,
    count_attempt: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE sink_submissions SET next_attempt_at = $3, locked_until = NULL, last_error = coalesce($4, last_error),
                attempts = attempts - CASE WHEN $5 THEN 0 ELSE 1 END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'pending'",
        tenant_id,
        id,
        at,
        error,
        count_attempt
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Record a sink's outcome on the shipment (`shipments.sinks.<sink>`).
pub async fn set_shipment_sink_status(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    sink: &str,
    status: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE shipments SET sinks = jsonb_set(sinks, ARRAY[$3::text], $4, true), updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        shipment_id,
        sink,
        Json(status) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// When the next pending submission is due (None when nothing is pending).
pub async fn next_pending_at(conn: &mut PgConnection) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        "SELECT min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
         FROM sink_submissions WHERE state = 'pending'"
    )
    .fetch_one(conn)
    .await
}
