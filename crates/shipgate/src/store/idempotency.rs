//! Idempotency-Key records; the protocol is in `http::idempotency`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

#[derive(Debug)]
pub struct KeyRow {
    pub request_hash: Vec<u8>,
    pub state: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub response_status: Option<i16>,
    pub response_headers: Option<Json<Vec<(String, String)>>>,
    pub response_body: Option<Vec<u8>>,
}

/// Claim a fresh key. True when this request owns it now. An expired record (past its
/// retention) is replaced as if it never existed.
pub async fn try_claim(
    conn: &mut PgConnection,
    tenant_id: &str,
    key: &str,
    hash: &[u8],
    lock_secs: f64,
    ttl_secs: f64,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        r#"INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, locked_until, expires_at)
           VALUES ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4), now() + make_interval(secs => $5))
           ON CONFLICT (tenant_id, key) DO UPDATE
              SET request_hash = EXCLUDED.request_hash, state = 'in_flight', locked_until = EXCLUDED.locked_until,
                  resource_id = NULL, response_status = NULL, response_headers = NULL, response_body = NULL,
                  created_at = now(), expires_at = EXCLUDED.expires_at
              WHERE idempotency_keys.expires_at < now()"#,
        tenant_id,
        key,
        hash,
        lock_secs,
        ttl_secs
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(conn: &mut PgConnection, tenant_id: &str, key: &str) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as!(
        KeyRow,
        r#"SELECT request_hash, state, locked_until, response_status,
                  response_headers AS "response_headers: Json<Vec<(String, String)>>", response_body
           FROM idempotency_keys WHERE tenant_id = $1 AND key = $2"#,
        tenant_id,
        key
    )
    .fetch_optional(conn)
    .await
}

/// Take over a key whose in-flight lock expired (the instance handling it died). True when this request owns it now.
pub async fn try_resume(
    conn: &mut PgConnection,
    tenant_id: &str,
    key: &str,
    hash: &[u8],
    lock_secs: f64,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        r#"UPDATE idempotency_keys SET state = 'in_flight', locked_until = now() + make_interval(secs => $4)
           WHERE tenant_id = $1 AND key = $2 AND request_hash = $3
             AND state = 'in_flight' AND locked_until < now()"#,
        tenant_id,
        key,
        hash,
        lock_secs
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn complete(
    conn: &mut PgConnection,
    tenant_id: &str,
    key: &str,
    status: i16,
    headers: &[(String, String)],
    body: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE idempotency_keys SET state = 'completed', locked_until = NULL, response_status = $3,
                  response_headers = $4, response_body = $5
           WHERE tenant_id = $1 AND key = $2"#,
        tenant_id,
        key,
        status,
        Json(headers) as _,
        body
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forget the key: the request failed before anything was done, so a retry starts over.
pub async fn release(conn: &mut PgConnection, tenant_id: &str, key: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'in_flight'",
        tenant_id,
        key
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn purge_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let r = sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at < now() AND state <> 'in_flight'")
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}
