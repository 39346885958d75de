//! The tracking engine's SQL: the poll schedule on `shipments` (migration
//! 20261122000010, whose trigger keeps it right whoever writes a shipment), the claim of
//! due shipments under a lease, and the per-connection pace shared by every instance.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::store::connections::ConnectionRow;

/// Tell the schedule trigger when a newly trackable shipment is first due.
pub async fn save_settings(conn: &mut PgConnection, first_poll_secs: f64, jitter: f64) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO tracking_settings (id, first_poll_secs, jitter, updated_at) VALUES (true, $1, $2, now())
         ON CONFLICT (id) DO UPDATE SET first_poll_secs = $1, jitter = $2, updated_at = now()",
        first_poll_secs,
        jitter
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Active connections of pollable carriers that have at least one due shipment
/// (one index probe per connection on `shipments_poll_due_idx`).
pub async fn due_connections(conn: &mut PgConnection) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"SELECT c.tenant_id, c.id, c.carrier, c.name, c.base_url, c.credentials_enc, c.credential_fields,
                  c.settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                  c.status, c.status_detail, c.verified_at, c.created_at, c.updated_at
           FROM connections c
           WHERE c.deleted_at IS NULL AND c.status = 'active' AND tracking_pollable_carrier(c.carrier)
             AND EXISTS (SELECT 1 FROM shipments s
                         WHERE s.tenant_id = c.tenant_id AND s.connection_id = c.id
                           AND s.poll_next_at IS NOT NULL AND s.poll_next_at <= now())
           ORDER BY c.tenant_id, c.id"#
    )
    .fetch_all(conn)
    .await
}

/// The connection's next free call slot (locked until the caller's transaction ends, so
/// instances take slots one after the other) and the database's clock.
pub async fn lock_pace(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
) -> sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query!(
        "INSERT INTO tracking_pace (tenant_id, connection_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        tenant_id,
        connection_id
    )
    .execute(&mut *conn)
    .await?;
    let r = sqlx::query!(
        r#"SELECT greatest(next_slot, now()) AS "start!", now() AS "now!" FROM tracking_pace
           WHERE tenant_id = $1 AND connection_id = $2 FOR UPDATE"#,
        tenant_id,
        connection_id
    )
    .fetch_one(conn)
    .await?;
    Ok((r.start, r.now))
}

/// One claimed shipment: its place in the claim (slot order) and its schedule state
/// before this poll.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub tenant_id: String,
    pub id: String,
    pub ord: i64,
    pub poll_failures: i32,
    pub status_changed_at: DateTime<Utc>,
}

/// Claim up to `limit` due shipments of a connection, oldest due first, skipping rows
/// another instance is claiming: their `poll_next_at` moves to the end of the lease and
/// they carry `token`. In the same statement the connection's pace moves past the slots
/// taken (`slot_secs` each, from `start`). Call inside the transaction of [`lock_pace`].
#[allow(clippy::too_many_arguments)]
pub async fn claim_due(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    limit: i64,
    lease_secs: f64,
    token: Uuid,
    start: DateTime<Utc>,
    slot_secs: f64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (SELECT tenant_id, id, poll_next_at FROM shipments
                        WHERE tenant_id = $1 AND connection_id = $2
                          AND poll_next_at IS NOT NULL AND poll_next_at <= now()
                        ORDER BY poll_next_at LIMIT $3
                        FOR UPDATE SKIP LOCKED),
                claimed AS (UPDATE shipments s SET poll_next_at = now() + make_interval(secs => $4), poll_claim = $5
                            FROM due WHERE s.tenant_id = due.tenant_id AND s.id = due.id
                            RETURNING s.tenant_id, s.id, due.poll_next_at AS was_due, s.poll_failures,
                                      s.status_changed_at),
                paced AS (UPDATE tracking_pace
                          SET next_slot = $6::timestamptz + make_interval(secs => (SELECT count(*) FROM claimed) * $7::float8)
                          WHERE tenant_id = $1 AND connection_id = $2)
           SELECT tenant_id AS "tenant_id!", id AS "id!", (row_number() OVER (ORDER BY was_due, id) - 1) AS "ord!",
                  poll_failures AS "poll_failures!", status_changed_at AS "status_changed_at!"
           FROM claimed ORDER BY 3"#,
        tenant_id,
        connection_id,
        limit,
        lease_secs,
        token,
        start,
        slot_secs,
    )
    .fetch_all(conn)
    .await
}

/// Record a poll's outcome and the next poll time, if the claim is still ours (a claim
/// taken over after its lease, or a shipment that reached a terminal state meanwhile,
/// is left alone). The schedule trigger clears the time for terminal shipments.
pub async fn finish(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    token: Uuid,
    next_in_secs: f64,
    failures: i32,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE shipments SET poll_next_at = now() + make_interval(secs => $4), poll_last_at = now(),
                poll_failures = $5, poll_claim = NULL
         WHERE tenant_id = $1 AND id = $2 AND poll_claim = $3",
        tenant_id,
        id,
        token,
        next_in_secs,
        failures
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Give a claim back unpolled (shutdown before its slot): due again at once.
pub async fn release(conn: &mut PgConnection, tenant_id: &str, id: &str, token: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE shipments SET poll_next_at = now(), poll_claim = NULL
         WHERE tenant_id = $1 AND id = $2 AND poll_claim = $3",
        tenant_id,
        id,
        token
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Shipments still polled whose status has not changed for `max_age_secs`, locked for
/// the caller's transaction (skipping any another instance holds).
pub async fn lock_stale(conn: &mut PgConnection, max_age_secs: f64, limit: i64) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        "SELECT tenant_id, id FROM shipments
         WHERE poll_next_at IS NOT NULL AND status_changed_at < now() - make_interval(secs => $1)
         LIMIT $2 FOR UPDATE SKIP LOCKED",
        max_age_secs,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.id)).collect())
}

/// How many shipments are due now (the backlog gauge).
pub async fn due_count(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM shipments WHERE poll_next_at IS NOT NULL AND poll_next_at <= now()"#
    )
    .fetch_one(conn)
    .await
}

/// The schedule of one shipment, as tests and ops read it.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub poll_next_at: Option<DateTime<Utc>>,
    pub poll_last_at: Option<DateTime<Utc>>,
    pub poll_failures: i32,
    pub poll_claim: Option<Uuid>,
    pub status_changed_at: DateTime<Utc>,
}

pub async fn schedule(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<Schedule>> {
    sqlx::query_as!(
        Schedule,
        "SELECT poll_next_at, poll_last_at, poll_failures, poll_claim, status_changed_at
         FROM shipments WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id
    )
    .fetch_optional(conn)
    .await
}
