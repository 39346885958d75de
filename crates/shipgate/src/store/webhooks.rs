//! Webhook endpoints, deliveries (the delivery queue) and attempts.
//!
//! The queue follows ARCHITECTURE.md rule 6 (svix/hook0 workers): due rows are
//! claimed with `FOR UPDATE SKIP LOCKED` in order of due time; a claim pushes
//! `next_attempt_at` to the end of the lease and sets a new claim token, and results
//! are recorded only where the token still matches.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub tenant_id: String,
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub secret_enc: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Until when the previous secret (after a rotation) still signs beside this one.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

pub struct NewEndpoint<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub event_types: &'a [String],
    pub secret_enc: &'a [u8],
    pub enabled: bool,
}

pub async fn insert_endpoint(conn: &mut PgConnection, e: &NewEndpoint<'_>) -> sqlx::Result<EndpointRow> {
    sqlx::query_as!(
        EndpointRow,
        r#"INSERT INTO webhook_endpoints (tenant_id, id, url, description, event_types, secret_enc, enabled, disabled_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN NULL ELSE 'disabled by the API' END)
           RETURNING tenant_id, id, url, description, event_types, secret_enc, enabled, disabled_reason, created_at, updated_at,
                     previous_secret_expires_at"#,
        e.tenant_id,
        e.id,
        e.url,
        e.description,
        e.event_types,
        e.secret_enc,
        e.enabled,
    )
    .fetch_one(conn)
    .await
}

pub async fn get_endpoint(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as!(
        EndpointRow,
        r#"SELECT tenant_id, id, url, description, event_types, secret_enc, enabled, disabled_reason, created_at, updated_at,
                  previous_secret_expires_at
           FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Newest first; `before` is the last id of the previous page.
pub async fn list_endpoints(
    conn: &mut PgConnection,
    tenant_id: &str,
    before: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<EndpointRow>> {
    sqlx::query_as!(
        EndpointRow,
        r#"SELECT tenant_id, id, url, description, event_types, secret_enc, enabled, disabled_reason, created_at, updated_at,
                  previous_secret_expires_at
           FROM webhook_endpoints WHERE tenant_id = $1 AND ($2::text IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        tenant_id,
        before,
        limit,
    )
    .fetch_all(conn)
    .await
}

pub struct EndpointUpdate<'a> {
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub event_types: &'a [String],
    /// A new sealed secret (rotation) or None to keep the current one. On rotation the
    /// current one becomes the previous secret for `secret_overlap_secs` (0: dropped).
    pub secret_enc: Option<&'a [u8]>,
    pub secret_overlap_secs: f64,
    pub enabled: bool,
    pub disabled_reason: Option<&'a str>,
}

pub async fn update_endpoint(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    u: &EndpointUpdate<'_>,
) -> sqlx::Result<Option<EndpointRow>> {
    sqlx::query_as!(
        EndpointRow,
        r#"UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5,
                  secret_enc = COALESCE($6, secret_enc), enabled = $7, disabled_reason = $8, updated_at = now(),
                  -- SET sees the row as it was: secret_enc here is the secret being replaced.
                  previous_secret_enc = CASE WHEN $6::bytea IS NULL THEN previous_secret_enc
                                             WHEN $9::float8 > 0 THEN secret_enc END,
                  previous_secret_expires_at = CASE WHEN $6::bytea IS NULL THEN previous_secret_expires_at
                                                    WHEN $9::float8 > 0 THEN now() + $9 * interval '1 second' END
           WHERE tenant_id = $1 AND id = $2
           RETURNING tenant_id, id, url, description, event_types, secret_enc, enabled, disabled_reason, created_at, updated_at,
                     previous_secret_expires_at"#,
        tenant_id,
        id,
        u.url,
        u.description,
        u.event_types,
        u.secret_enc,
        u.enabled,
        u.disabled_reason,
        u.secret_overlap_secs,
    )
    .fetch_optional(conn)
    .await
}

pub async fn delete_endpoint(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<bool> {
    let r = sqlx::query!("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2", tenant_id, id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Disable an endpoint (e.g. it answered 410 Gone) and stop its pending deliveries:
/// they end `cancelled` and can be replayed once it is enabled again.
pub async fn disable_endpoint(conn: &mut PgConnection, tenant_id: &str, id: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_endpoints SET enabled = false, disabled_reason = $3, updated_at = now()
           WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    cancel_pending(conn, tenant_id, id).await
}

pub async fn cancel_pending(conn: &mut PgConnection, tenant_id: &str, endpoint_id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_token = NULL,
                  last_error = COALESCE(last_error, 'endpoint_disabled'), updated_at = now()
           WHERE tenant_id = $1 AND endpoint_id = $2 AND state = 'pending'"#,
        tenant_id,
        endpoint_id,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Fan out up to `limit` undispatched events (oldest first) into deliveries for every
/// enabled endpoint of their tenant whose filter matches, and mark them dispatched —
/// one statement, so in one transaction. Events locked by another dispatcher are
/// skipped. Returns (events dispatched, deliveries created).
pub async fn dispatch(conn: &mut PgConnection, limit: i64, max_attempts: i32) -> sqlx::Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"WITH ev AS (
               SELECT tenant_id, id, type FROM events WHERE dispatched_at IS NULL
               ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
           ), ins AS (
               INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, next_attempt_at, max_attempts)
               SELECT ev.tenant_id,
                      'whd_' || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
                             || substr(md5(random()::text || ev.id || e.id), 1, 20),
                      e.id, ev.id, now(), $2
               FROM ev JOIN webhook_endpoints e ON e.tenant_id = ev.tenant_id AND e.enabled
                    AND (cardinality(e.event_types) = 0 OR ev.type = ANY (e.event_types))
               ON CONFLICT DO NOTHING
               RETURNING 1
           ), upd AS (
               UPDATE events SET dispatched_at = now() FROM ev
               WHERE events.tenant_id = ev.tenant_id AND events.id = ev.id
               RETURNING 1
           )
           SELECT (SELECT count(*) FROM upd) AS "events!", (SELECT count(*) FROM ins) AS "deliveries!""#,
        limit,
        max_attempts,
    )
    .fetch_one(conn)
    .await?;
    Ok((r.events, r.deliveries))
}

/// A claimed delivery with what the worker needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub tenant_id: String,
    pub id: String,
    pub endpoint_id: String,
    pub due_at: DateTime<Utc>,
    pub seq: i64,
    /// This attempt's number (1-based).
    pub attempt: i32,
    pub max_attempts: i32,
    pub event_id: String,
    pub event_type: String,
    pub shipment_seq: i32,
    pub event_data: Json<Value>,
    pub event_created_at: DateTime<Utc>,
    pub url: String,
    pub secret_enc: Vec<u8>,
    /// The rotated-out secret while its overlap lasts: it signs too.
    pub previous_secret_enc: Option<Vec<u8>>,
    pub enabled: bool,
}

/// Claim up to `limit` due deliveries, earliest due first, under a lease of
/// `lease_ms`. The attempt is counted at claim time so a worker that crashes on a
/// delivery does not retry it forever.
pub async fn claim_due(conn: &mut PgConnection, limit: i64, lease_ms: f64, token: Uuid) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as!(
        Claimed,
        r#"WITH due AS (
               SELECT tenant_id, id, next_attempt_at FROM webhook_deliveries
               WHERE state = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED
           )
           UPDATE webhook_deliveries d
           SET claim_token = $3, attempts = d.attempts + 1,
               next_attempt_at = now() + $2 * interval '1 millisecond', updated_at = now()
           FROM due, events ev, webhook_endpoints e
           WHERE d.tenant_id = due.tenant_id AND d.id = due.id
             AND ev.tenant_id = d.tenant_id AND ev.id = d.event_id
             AND e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
           RETURNING d.tenant_id, d.id, d.endpoint_id, due.next_attempt_at AS "due_at!", d.seq,
                     d.attempts AS attempt, d.max_attempts, ev.id AS event_id, ev.type AS event_type,
                     ev.shipment_seq, ev.data AS "event_data!: Json<Value>", ev.created_at AS event_created_at,
                     e.url, e.secret_enc, e.enabled,
                     CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_enc END
                         AS "previous_secret_enc?""#,
        limit,
        lease_ms,
        token,
    )
    .fetch_all(conn)
    .await
}

/// The outcome of one attempt, to record.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub tenant_id: String,
    pub delivery_id: String,
    pub claim_token: Uuid,
    pub attempt: i32,
    /// pending (retry at `next_attempt_at`), succeeded, failed or cancelled
    pub state: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub response_status: Option<i32>,
    pub error_code: Option<String>,
    pub response_excerpt: Option<String>,
}

/// Record many outcomes in one statement. Rows whose claim token changed (the lease
/// was lost and another worker took over, or a manual retry re-queued it) are left
/// alone and their attempt is not logged. Returns how many were recorded.
pub async fn record(conn: &mut PgConnection, outcomes: &[Outcome]) -> sqlx::Result<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let tenants: Vec<&str> = outcomes.iter().map(|o| o.tenant_id.as_str()).collect();
    let ids: Vec<&str> = outcomes.iter().map(|o| o.delivery_id.as_str()).collect();
    let tokens: Vec<Uuid> = outcomes.iter().map(|o| o.claim_token).collect();
    let attempts: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
    let states: Vec<&str> = outcomes.iter().map(|o| o.state).collect();
    let next: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.next_attempt_at).collect();
    let started: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.started_at).collect();
    let durations: Vec<i32> = outcomes.iter().map(|o| o.duration_ms).collect();
    let statuses: Vec<Option<i32>> = outcomes.iter().map(|o| o.response_status).collect();
    let codes: Vec<Option<String>> = outcomes.iter().map(|o| o.error_code.clone()).collect();
    let excerpts: Vec<Option<String>> = outcomes.iter().map(|o| o.response_excerpt.clone()).collect();
    let r = sqlx::query!(
        r#"WITH o AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::int4[], $5::text[], $6::timestamptz[],
                                    $7::timestamptz[], $8::int4[], $9::int4[], $10::text[], $11::text[])
                   AS o(tenant_id, id, token, attempt, state, next_at, started_at, duration_ms, status, code, excerpt)
           ), upd AS (
               UPDATE webhook_deliveries d
               SET state = o.state, next_attempt_at = o.next_at, claim_token = NULL,
                   last_status = o.status, last_error = o.code, updated_at = now(),
                   delivered_at = CASE WHEN o.state = 'succeeded' THEN now() ELSE d.delivered_at END
               FROM o WHERE d.tenant_id = o.tenant_id AND d.id = o.id AND d.claim_token = o.token
               RETURNING d.tenant_id, d.id
           )
           INSERT INTO webhook_attempts (tenant_id, delivery_id, attempt, started_at, duration_ms, response_status,
                                         error_code, response_excerpt)
           SELECT o.tenant_id, o.id, o.attempt, o.started_at, o.duration_ms, o.status, o.code, o.excerpt
           FROM o JOIN upd ON upd.tenant_id = o.tenant_id AND upd.id = o.id
           ON CONFLICT DO NOTHING"#,
        &tenants as &[&str],
        &ids as &[&str],
        &tokens,
        &attempts,
        &states as &[&str],
        &next as &[Option<DateTime<Utc>>],
        &started,
        &durations,
        &statuses as &[Option<i32>],
        &codes as &[Option<String>],
        &excerpts as &[Option<String>],
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

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

/// Endpoints whose secret is not under master key `current` (first byte), after
/// `after` ("tenant/id"), for key rotation: (tenant_id, id, secret_enc).
pub async fn stale_secrets(
    conn: &mut PgConnection,
    current: i16,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id, id, secret_enc FROM webhook_endpoints
           WHERE get_byte(secret_enc, 0) <> $1 AND tenant_id || '/' || id > $2
           ORDER BY tenant_id || '/' || id LIMIT $3"#,
        i32::from(current),
        after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.id, r.secret_enc)).collect())
}

/// Endpoints whose previous secret (still in its overlap or not) is not under master
/// key `current`, after `after` ("tenant/id"): (tenant_id, id, previous_secret_enc).
pub async fn stale_previous_secrets(
    conn: &mut PgConnection,
    current: i16,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<(String, String, Vec<u8>)>> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id, id, previous_secret_enc AS "previous_secret_enc!" FROM webhook_endpoints
           WHERE previous_secret_enc IS NOT NULL AND get_byte(previous_secret_enc, 0) <> $1
             AND tenant_id || '/' || id > $2
           ORDER BY tenant_id || '/' || id LIMIT $3"#,
        i32::from(current),
        after,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.id, r.previous_secret_enc)).collect())
}

/// Replace an endpoint's previous-secret ciphertext only if it is still `old`.
pub async fn swap_previous_secret_ciphertext(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    old: &[u8],
    new: &[u8],
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE webhook_endpoints SET previous_secret_enc = $4
         WHERE tenant_id = $1 AND id = $2 AND previous_secret_enc = $3",
        tenant_id,
        id,
        old,
        new
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forget previous secrets whose overlap is over (they no longer sign). Returns how many.
pub async fn drop_expired_previous_secrets(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "UPDATE webhook_endpoints SET previous_secret_enc = NULL, previous_secret_expires_at = NULL
         WHERE previous_secret_expires_at <= now()"
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Replace an endpoint's secret ciphertext only if it is still `old` (compare-and-set).
pub async fn swap_secret_ciphertext(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    old: &[u8],
    new: &[u8],
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE webhook_endpoints SET secret_enc = $4 WHERE tenant_id = $1 AND id = $2 AND secret_enc = $3",
        tenant_id,
        id,
        old,
        new
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
