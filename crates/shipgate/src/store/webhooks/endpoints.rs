//! Webhook endpoints, their sealed signing secrets (and the previous one while a
//! rotation's overlap lasts), and their rotation under a new master key.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

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
