//! The job queue's SQL (see `crate::jobs` for the semantics).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// The LISTEN/NOTIFY channel that wakes workers. Only a hint: workers also poll.
pub const CHANNEL: &str = "shipgate_jobs";

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub tenant_id: Option<&'a str>,
    pub kind: &'a str,
    pub payload: &'a Value,
    pub unique_key: Option<&'a str>,
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    pub lease_secs: i32,
}

/// Insert a job in the caller's transaction and wake the workers when it commits
/// (NOTIFY is delivered at commit). A job with the same `(kind, unique_key)` already
/// queued is moved earlier if needed; one already running is marked to run once more.
/// Returns the job id.
pub async fn enqueue(conn: &mut PgConnection, j: &NewJob<'_>) -> sqlx::Result<i64> {
    let row = sqlx::query!(
        r#"WITH j AS (
               INSERT INTO jobs (tenant_id, kind, payload, unique_key, run_at, max_attempts, lease_secs)
               VALUES ($1, $2, $3, $4, coalesce($5, now()), $6, $7)
               ON CONFLICT (kind, unique_key) WHERE unique_key IS NOT NULL AND state IN ('queued', 'running')
               DO UPDATE SET run_at = CASE WHEN jobs.state = 'queued' THEN least(jobs.run_at, EXCLUDED.run_at)
                                           ELSE jobs.run_at END,
                             run_again = jobs.state = 'running',
                             updated_at = now()
               RETURNING id)
           SELECT id AS "id!", pg_notify($8, '') AS "notified" FROM j"#,
        j.tenant_id,
        j.kind,
        Json(j.payload) as _,
        j.unique_key,
        j.run_at,
        j.max_attempts,
        j.lease_secs,
        CHANNEL,
    )
    .fetch_one(conn)
    .await?;
    Ok(row.id)
}

#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub tenant_id: Option<String>,
    pub kind: String,
    pub payload: Json<Value>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_secs: i32,
    pub claim_token: Uuid,
}

/// Claim up to `limit` due jobs of the given kinds, oldest due first, each under a fresh
/// claim token and its lease. Rows locked by another claimer are skipped, never waited for.
pub async fn claim(
    conn: &mut PgConnection,
    kinds: &[String],
    limit: i64,
    worker: &str,
) -> sqlx::Result<Vec<ClaimedJob>> {
    sqlx::query_as!(
        ClaimedJob,
        r#"UPDATE jobs j SET state = 'running', claim_token = gen_random_uuid(), claimed_by = $3,
                  attempts = j.attempts + 1, lease_until = now() + make_interval(secs => j.lease_secs),
                  run_again = false, updated_at = now()
           FROM (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= now() AND kind = ANY($1)
                 ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
           WHERE j.id = due.id
           RETURNING j.id, j.tenant_id, j.kind, j.payload AS "payload!: Json<Value>", j.attempts, j.max_attempts,
                     j.lease_secs, j.claim_token AS "claim_token!""#,
        kinds,
        limit,
        worker,
    )
    .fetch_all(conn)
    .await
}

/// The job succeeded. False when the claim was lost (lease expired and the job was
/// taken by another worker): the caller's result is then not recorded.
pub async fn complete(conn: &mut PgConnection, id: i64, token: Uuid) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE jobs SET state = CASE WHEN run_again THEN 'queued' ELSE 'succeeded' END,
                run_at = now(), attempts = CASE WHEN run_again THEN 0 ELSE attempts END, run_again = false,
                finished_at = CASE WHEN run_again THEN NULL ELSE now() END,
                claim_token = NULL, lease_until = NULL, last_error = NULL, updated_at = now()
         WHERE id = $1 AND claim_token = $2 AND state = 'running'",
        id,
        token
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Back to the queue at `run_at`. `count_attempt = false` gives the attempt back (the
/// job was postponed, not failed); `reset_attempts` starts a periodic job's next run.
pub async fn requeue(
    conn: &mut PgConnection,
    id: i64,
    token: Uuid,
    run_at: DateTime<Utc>,
    error: Option<&str>,
    count_attempt: bool,
    reset_attempts: bool,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE jobs SET state = 'queued',
                run_at = CASE WHEN run_again THEN now() ELSE $3 END, run_again = false,
                attempts = CASE WHEN $6 THEN 0 WHEN $5 THEN attempts ELSE attempts - 1 END,
                last_error = $4, claim_token = NULL, lease_until = NULL, updated_at = now()
         WHERE id = $1 AND claim_token = $2 AND state = 'running'",
        id,
        token,
        run_at,
        error,
        count_attempt,
        reset_attempts
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Give up: the job goes to the dead letter, visible and re-runnable.
pub async fn bury(conn: &mut PgConnection, id: i64, token: Uuid, error: &str) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE jobs SET state = 'dead', last_error = $3, finished_at = now(), claim_token = NULL,
                lease_until = NULL, run_again = false, updated_at = now()
         WHERE id = $1 AND claim_token = $2 AND state = 'running'",
        id,
        token,
        error
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Jobs whose lease ran out (their worker died or stalled) go back to the queue, or to
/// the dead letter when that was their last attempt. Returns how many were taken back.
pub async fn reap_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                run_at = now(), claim_token = NULL, lease_until = NULL,
                last_error = 'lease expired (worker lost)', updated_at = now()
         WHERE id IN (SELECT id FROM jobs WHERE state = 'running' AND lease_until < now() FOR UPDATE SKIP LOCKED)"
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Forget finished jobs after a while (dead ones stay until re-run or removed).
pub async fn purge_succeeded(conn: &mut PgConnection, older_than_hours: i32) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM jobs WHERE state = 'succeeded' AND finished_at < now() - make_interval(hours => $1)",
        older_than_hours
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub tenant_id: Option<String>,
    pub kind: String,
    pub payload: Json<Value>,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A tenant's jobs (newest first), optionally of one state, before `before_id`.
pub async fn list(
    conn: &mut PgConnection,
    tenant_id: &str,
    state: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"SELECT id, tenant_id, kind, payload AS "payload!: Json<Value>", state, attempts, max_attempts, run_at,
                  last_error, created_at, updated_at, finished_at
           FROM jobs
           WHERE tenant_id = $1 AND ($2::text IS NULL OR state = $2) AND ($3::int8 IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4"#,
        tenant_id,
        state,
        before_id,
        limit
    )
    .fetch_all(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, tenant_id: &str, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"SELECT id, tenant_id, kind, payload AS "payload!: Json<Value>", state, attempts, max_attempts, run_at,
                  last_error, created_at, updated_at, finished_at
           FROM jobs WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Re-run a dead job now with a fresh set of attempts. None when it is not dead (or
/// another job with its unique key is already queued).
pub async fn rerun_dead(conn: &mut PgConnection, tenant_id: &str, id: i64) -> sqlx::Result<Option<JobRow>> {
    let r = sqlx::query_as!(
        JobRow,
        r#"UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now()
           WHERE tenant_id = $1 AND id = $2 AND state = 'dead'
             AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.kind = jobs.kind AND o.unique_key = jobs.unique_key
                                                    AND o.state IN ('queued', 'running'))
           RETURNING id, tenant_id, kind, payload AS "payload!: Json<Value>", state, attempts, max_attempts, run_at,
                     last_error, created_at, updated_at, finished_at"#,
        tenant_id,
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if r.is_some() {
        sqlx::query!("SELECT pg_notify($1, '')", CHANNEL).execute(conn).await?;
    }
    Ok(r)
}

/// Queue depth by kind and state, for metrics and `/readyz`-style checks.
pub async fn counts(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kind, state, count(*) AS "n!" FROM jobs WHERE state <> 'succeeded' GROUP BY kind, state"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.state, r.n)).collect())
}

/// Give a booking job to every booking left `pending` with no job at all and untouched
/// for `idle_secs`: the request that created it died before its first attempt was
/// recorded (a crashed instance). A booking that is worked on has a job or a recent
/// `updated_at`. Returns how many were adopted (at most 500 a round).
pub async fn adopt_orphan_bookings(
    conn: &mut PgConnection,
    idle_secs: f64,
    max_attempts: i32,
    lease_secs: i32,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        r#"INSERT INTO jobs (tenant_id, kind, payload, unique_key, run_at, max_attempts, lease_secs)
           SELECT s.tenant_id, 'booking', jsonb_build_object('shipment_id', s.id), 'booking:' || s.tenant_id || ':' || s.id,
                  now(), $2, $3
           FROM shipments s
           WHERE s.booking_state = 'pending' AND s.updated_at < now() - make_interval(secs => $1)
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.unique_key = 'booking:' || s.tenant_id || ':' || s.id
                                                    AND j.kind = 'booking')
           LIMIT 500
           ON CONFLICT (kind, unique_key) WHERE unique_key IS NOT NULL AND state IN ('queued', 'running') DO NOTHING"#,
        idle_secs,
        max_attempts,
        lease_secs,
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// The booking was settled (refused for good): a queued booking job is dropped.
pub async fn drop_queued_booking(conn: &mut PgConnection, tenant_id: &str, shipment_id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM jobs WHERE kind = 'booking' AND unique_key = 'booking:' || $1 || ':' || $2 AND state = 'queued'",
        tenant_id,
        shipment_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A shipment's booking jobs (the console's shipment page), newest first.
pub async fn booking_jobs_of(conn: &mut PgConnection, tenant_id: &str, shipment_id: &str) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"SELECT id, tenant_id, kind, payload AS "payload!: Json<Value>", state, attempts, max_attempts, run_at,
                  last_error, created_at, updated_at, finished_at
           FROM jobs WHERE unique_key = 'booking:' || $1 || ':' || $2 AND tenant_id = $1 AND kind = 'booking'
           ORDER BY id DESC LIMIT 10"#,
        tenant_id,
        shipment_id
    )
    .fetch_all(conn)
    .await
}

/// Make a shipment's queued booking job due now with one attempt left (the sandbox's
/// demo of a dead job; never used by the product's own workflows).
pub async fn last_attempt_now(conn: &mut PgConnection, tenant_id: &str, shipment_id: &str) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "UPDATE jobs SET max_attempts = attempts + 1, run_at = now()
         WHERE unique_key = 'booking:' || $1 || ':' || $2 AND tenant_id = $1 AND kind = 'booking' AND state = 'queued'",
        tenant_id,
        shipment_id
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
