//! The delivery queue, the worker's side: fan events out into deliveries, claim due
//! ones under a lease, record outcomes where the claim token still matches.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

/// Where the dispatcher stands: every event at or before (txid, seq) is fanned out.
/// Transaction ids are `xid8` (64 bits, never wrapping), carried as decimal text.
#[derive(Debug, Clone)]
pub struct DispatchCursor {
    pub txid: String,
    pub seq: i64,
    /// The oldest transaction still running when the cursor was read (the snapshot's
    /// xmin): every transaction below it has ended, so no event can still appear there.
    pub horizon: String,
}

/// Lock the dispatch cursor for the caller's transaction, or None while another
/// dispatcher holds it (SKIP LOCKED: this round then does nothing).
pub async fn lock_dispatch_cursor(conn: &mut PgConnection) -> sqlx::Result<Option<DispatchCursor>> {
    // In READ COMMITTED, FOR UPDATE returns the row's newest version even when another
    // dispatcher moved it after this statement's snapshot (PG 15 docs 13.2.1). The
    // horizon may be older than the next statement's snapshot: that is safe, since
    // every transaction below an older xmin has ended too.
    sqlx::query_as!(
        DispatchCursor,
        r#"SELECT txid::text AS "txid!", seq, pg_snapshot_xmin(pg_current_snapshot())::text AS "horizon!"
           FROM webhook_dispatch_cursor WHERE id FOR UPDATE SKIP LOCKED"#
    )
    .fetch_optional(conn)
    .await
}

/// What one dispatch round did.
#[derive(Debug, Clone, Default)]
pub struct Dispatched {
    pub events: i64,
    pub deliveries: i64,
    /// The cursor after the round (unchanged when no event was fanned out).
    pub txid: String,
    pub seq: i64,
}

/// Fan out up to `limit` events after `cursor`, in (txid, seq) order, written by
/// transactions below its horizon (all ended: no event can still appear among them),
/// into deliveries for every enabled endpoint of their tenant whose filter matches, and
/// move the cursor past the last one — one statement, in the caller's transaction that
/// holds the cursor's lock ([`lock_dispatch_cursor`]). A round that reaches `limit` can
/// stop inside one transaction's events: the next starts after its (txid, seq).
/// webhook_deliveries' UNIQUE (tenant_id, endpoint_id, event_id) stays the last guard
/// against a second delivery.
pub async fn dispatch(
    conn: &mut PgConnection,
    cursor: &DispatchCursor,
    limit: i64,
    max_attempts: i32,
) -> sqlx::Result<Dispatched> {
    let r = sqlx::query!(
        r#"WITH ev AS (
               SELECT tenant_id, id, type, txid, seq FROM events
               WHERE (txid, seq) > ($1::text::xid8, $2::int8) AND txid < $3::text::xid8
               ORDER BY txid, seq LIMIT $4
           ), ins AS (
               INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, next_attempt_at, max_attempts)
               SELECT ev.tenant_id,
                      'whd_' || lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
                             || substr(md5(random()::text || ev.id || e.id), 1, 20),
                      e.id, ev.id, now(), $5
               FROM ev JOIN webhook_endpoints e ON e.tenant_id = ev.tenant_id AND e.enabled
                    AND (cardinality(e.event_types) = 0 OR ev.type = ANY (e.event_types))
               ON CONFLICT DO NOTHING
               RETURNING 1
           ), last AS (
               SELECT txid, seq FROM ev ORDER BY txid DESC, seq DESC LIMIT 1
           ), mv AS (
               UPDATE webhook_dispatch_cursor c SET txid = last.txid, seq = last.seq, updated_at = now()
               FROM last WHERE c.id
               RETURNING c.txid, c.seq
           )
           SELECT (SELECT count(*) FROM ev) AS "events!", (SELECT count(*) FROM ins) AS "deliveries!",
                  (SELECT txid::text FROM mv) AS txid, (SELECT seq FROM mv) AS seq"#,
        cursor.txid,
        cursor.seq,
        cursor.horizon,
        limit,
        max_attempts,
    )
    .fetch_one(conn)
    .await?;
    Ok(Dispatched {
        events: r.events,
        deliveries: r.deliveries,
        txid: r.txid.unwrap_or_else(|| cursor.txid.clone()),
        seq: r.seq.unwrap_or(cursor.seq),
    })
}

/// Whether any event with an id in `[from, to)` is still ahead of the dispatch cursor
/// (not yet fanned out, or being fanned out by a transaction not yet committed). When
/// none is, every delivery those events will ever have is already committed: the cursor
/// only moves forward.
pub async fn undispatched_between(conn: &mut PgConnection, from: &str, to: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM events e, webhook_dispatch_cursor c
                          WHERE e.id >= $1 AND e.id < $2 AND (e.txid, e.seq) > (c.txid, c.seq)) AS "ahead!""#,
        from,
        to,
    )
    .fetch_one(conn)
    .await
}

/// How long the first event after the cursor (txid, seq) has waited, in seconds: the
/// dispatch lag (None when no event waits). Events wait while a transaction that began
/// before them is still open, anywhere in the cluster (see [`dispatch`]).
pub async fn dispatch_lag(conn: &mut PgConnection, txid: &str, seq: i64) -> sqlx::Result<Option<f64>> {
    sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM clock_timestamp() - created_at)::float8 AS "lag!"
           FROM events WHERE (txid, seq) > ($1::text::xid8, $2::int8)
           ORDER BY txid, seq LIMIT 1"#,
        txid,
        seq,
    )
    .fetch_optional(conn)
    .await
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
