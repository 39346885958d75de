//! Aggregate reads of the ops console (docs/console.md): shipments by day and status,
//! bookings needing a look, failing deliveries, connection health from the exchange log.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

pub struct DayCount {
    pub day: NaiveDate,
    pub status: String,
    pub n: i64,
}

/// Shipments created since `since`, by UTC day and current status.
pub async fn status_by_day(
    conn: &mut PgConnection,
    tenant_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<DayCount>> {
    sqlx::query_as!(
        DayCount,
        // Grouped by a date_bin bucket (a hash aggregate over the index-only scan), not by
        // a date expression, which Postgres sorts all rows for.
        r#"SELECT (d AT TIME ZONE 'UTC')::date AS "day!", status AS "status!", n AS "n!" FROM (
             SELECT date_bin('1 day', created_at, '2000-01-01 00:00:00+00') AS d, status, count(*) AS n
             FROM shipments WHERE tenant_id = $1 AND created_at >= $2
             GROUP BY status, d) x
           ORDER BY 1, 2"#,
        tenant_id,
        since
    )
    .fetch_all(conn)
    .await
}

/// How many shipments have this status, counted up to `cap` (a count past it reads "cap+").
pub async fn count_status(conn: &mut PgConnection, tenant_id: &str, status: &str, cap: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM (SELECT 1 FROM shipments WHERE tenant_id = $1 AND status = $2 LIMIT $3) s"#,
        tenant_id,
        status,
        cap
    )
    .fetch_one(conn)
    .await
}

/// Ids of the newest shipments whose booking is pending or failed.
pub async fn booking_attention(conn: &mut PgConnection, tenant_id: &str, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT id FROM shipments WHERE tenant_id = $1 AND booking_state IN ('pending', 'failed')
           ORDER BY id DESC LIMIT $2"#,
        tenant_id,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Ids of the newest failing deliveries (failed, or pending after a failed attempt).
pub async fn failing_deliveries(conn: &mut PgConnection, tenant_id: &str, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT id FROM webhook_deliveries
           WHERE tenant_id = $1 AND (state = 'failed' OR (state = 'pending' AND attempts > 0))
           ORDER BY seq DESC LIMIT $2"#,
        tenant_id,
        limit
    )
    .fetch_all(conn)
    .await
}

pub struct EndpointStats {
    pub endpoint_id: String,
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
}

/// Per endpoint, its deliveries created since `since` by outcome.
pub async fn endpoint_stats(
    conn: &mut PgConnection,
    tenant_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<EndpointStats>> {
    sqlx::query_as!(
        EndpointStats,
        r#"SELECT endpoint_id,
                  count(*) FILTER (WHERE state = 'succeeded') AS "succeeded!",
                  count(*) FILTER (WHERE state = 'failed') AS "failed!",
                  count(*) FILTER (WHERE state = 'pending') AS "pending!"
           FROM webhook_deliveries WHERE tenant_id = $1 AND created_at >= $2
           GROUP BY endpoint_id"#,
        tenant_id,
        since
    )
    .fetch_all(conn)
    .await
}

pub struct ConnectionCalls {
    pub connection_id: String,
    pub calls: i64,
    pub errors: i64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Per connection, its carrier calls since `since` (the last hour): how many, how many
/// failed (an error, or a 5xx or 429 answer), the median and 99th percentile latency.
pub async fn connection_calls(
    conn: &mut PgConnection,
    tenant_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<ConnectionCalls>> {
    sqlx::query_as!(
        ConnectionCalls,
        r#"SELECT connection_id AS "connection_id!",
                  count(*) AS "calls!",
                  count(*) FILTER (WHERE error IS NOT NULL OR response_status >= 500 OR response_status = 429) AS "errors!",
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99_ms
           FROM carrier_exchanges WHERE tenant_id = $1 AND created_at >= $2
           GROUP BY connection_id"#,
        tenant_id,
        since
    )
    .fetch_all(conn)
    .await
}

pub struct CallBucket {
    pub connection_id: String,
    /// Which 5-minute slice after `since` (0, 1, 2 ...).
    pub bucket: i32,
    pub calls: i64,
}

/// Per connection, its carrier calls since `since` per 5 minutes.
pub async fn call_buckets(
    conn: &mut PgConnection,
    tenant_id: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<CallBucket>> {
    sqlx::query_as!(
        CallBucket,
        r#"SELECT connection_id AS "connection_id!",
                  floor(extract(epoch FROM created_at - $2::timestamptz) / 300)::int4 AS "bucket!",
                  count(*) AS "calls!"
           FROM carrier_exchanges WHERE tenant_id = $1 AND created_at >= $2
           GROUP BY 1, 2"#,
        tenant_id,
        since
    )
    .fetch_all(conn)
    .await
}
