//! Reconciliation runs and what they read and mark on shipments (see
//! `service::reconcile` for the workflow).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::Status;

#[derive(Debug, Clone)]
pub struct ReconciliationRow {
    pub tenant_id: String,
    pub id: String,
    pub connection_id: String,
    pub job_id: i64,
    pub import: bool,
    pub trigger: String,
    pub state: String,
    pub cursor: Option<String>,
    pub pages: i32,
    pub report: Json<Value>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewReconciliation<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub connection_id: &'a str,
    pub job_id: i64,
    pub import: bool,
    pub trigger: &'a str,
}

pub async fn insert(conn: &mut PgConnection, r: &NewReconciliation<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO reconciliations (tenant_id, id, connection_id, job_id, import, trigger) VALUES ($1, $2, $3, $4, $5, $6)",
        r.tenant_id,
        r.id,
        r.connection_id,
        r.job_id,
        r.import,
        r.trigger
    )
    .execute(conn)
    .await?;
    Ok(())
}

macro_rules! select_reconciliation {
    ($suffix:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ReconciliationRow,
            r#"SELECT tenant_id, id, connection_id, job_id, import, trigger, state, cursor, pages,
                      report AS "report!: Json<Value>", error, started_at, updated_at, finished_at
               FROM reconciliations "# + $suffix
            $(, $arg)*
        )
    };
}

/// The run a job walks.
pub async fn by_job(conn: &mut PgConnection, job_id: i64) -> sqlx::Result<Option<ReconciliationRow>> {
    select_reconciliation!("WHERE job_id = $1", job_id).fetch_optional(conn).await
}

/// The connection's run still going, if any.
pub async fn running(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
) -> sqlx::Result<Option<ReconciliationRow>> {
    select_reconciliation!(
        "WHERE tenant_id = $1 AND connection_id = $2 AND state = 'running' ORDER BY id DESC LIMIT 1",
        tenant_id,
        connection_id
    )
    .fetch_optional(conn)
    .await
}

/// The connection's runs, newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<ReconciliationRow>> {
    select_reconciliation!(
        "WHERE tenant_id = $1 AND connection_id = $2 ORDER BY id DESC LIMIT $3",
        tenant_id,
        connection_id,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Record a walked page, only while the job still holds its claim (a worker whose
/// lease ran out must not write over the one that took the job over). False: the claim
/// is lost, and the caller's transaction must be rolled back.
pub async fn save_page(
    conn: &mut PgConnection,
    r: &ReconciliationRow,
    claim_token: Uuid,
    cursor: Option<&str>,
    report: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE reconciliations SET cursor = $3, pages = pages + 1, report = $4, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'running'
           AND EXISTS (SELECT 1 FROM jobs WHERE id = $5 AND claim_token = $6 AND state = 'running')",
        r.tenant_id,
        r.id,
        cursor,
        Json(report) as _,
        r.job_id,
        claim_token
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The run ended (`succeeded` or `failed`) with its report.
pub async fn finish(
    conn: &mut PgConnection,
    r: &ReconciliationRow,
    state: &str,
    report: &Value,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE reconciliations SET state = $3, report = $4, error = $5, finished_at = now(), updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND state = 'running'",
        r.tenant_id,
        r.id,
        state,
        Json(report) as _,
        error
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One of our shipments on the connection that a listed carrier id names.
#[derive(Debug, Clone)]
pub struct Known {
    pub id: String,
    pub carrier_reference: Option<String>,
    pub tracking_number: Option<String>,
    pub status: Status,
    pub subtag: Option<String>,
}

/// The connection's shipments whose carrier id or tracking number is one of these.
pub async fn find_known(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    references: &[String],
    tracking_numbers: &[String],
) -> sqlx::Result<Vec<Known>> {
    sqlx::query_as!(
        Known,
        r#"SELECT id, carrier_reference, tracking_number, status AS "status!: Status", subtag FROM shipments
           WHERE tenant_id = $1 AND connection_id = $2
             AND (carrier_reference = ANY($3) OR tracking_number = ANY($4))"#,
        tenant_id,
        connection_id,
        references,
        tracking_numbers
    )
    .fetch_all(conn)
    .await
}

/// These shipments were on the carrier's list just now.
pub async fn mark_seen(conn: &mut PgConnection, tenant_id: &str, ids: &[String]) -> sqlx::Result<()> {
    sqlx::query!("UPDATE shipments SET seen_at_carrier = now() WHERE tenant_id = $1 AND id = ANY($2)", tenant_id, ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The connection's booked shipments created before `since` that no page since then
/// showed (the caller drops the terminal ones), oldest first, at most `limit`.
pub async fn unseen_since(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Known>> {
    sqlx::query_as!(
        Known,
        r#"SELECT id, carrier_reference, tracking_number, status AS "status!: Status", subtag FROM shipments
           WHERE tenant_id = $1 AND connection_id = $2 AND booking_state = 'booked' AND created_at < $3
             AND (seen_at_carrier IS NULL OR seen_at_carrier < $3)
           ORDER BY id LIMIT $4"#,
        tenant_id,
        connection_id,
        since,
        limit
    )
    .fetch_all(conn)
    .await
}

/// A connection whose scheduled reconciliation is due.
#[derive(Debug, Clone)]
pub struct DueConnection {
    pub tenant_id: String,
    pub connection_id: String,
}

/// Live connections with `settings.reconcile_every_hours` whose last run (of any
/// trigger) started longer ago than that, or that never ran.
pub async fn due_scheduled(conn: &mut PgConnection) -> sqlx::Result<Vec<DueConnection>> {
    sqlx::query_as!(
        DueConnection,
        r#"SELECT c.tenant_id, c.id AS connection_id FROM connections c
           WHERE c.deleted_at IS NULL AND jsonb_typeof(c.settings -> 'reconcile_every_hours') = 'number'
             AND NOT EXISTS (
                 SELECT 1 FROM reconciliations r
                 WHERE r.tenant_id = c.tenant_id AND r.connection_id = c.id
                   AND (r.state = 'running'
                        OR r.started_at > now() - make_interval(hours => (c.settings ->> 'reconcile_every_hours')::int)))"#
    )
    .fetch_all(conn)
    .await
}
