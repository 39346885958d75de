//! The delivery queue, the worker's side: fan events out into deliveries, claim due
//! ones under a lease, record outcomes where the claim token still matches.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

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
