//! Idempotency-Key records; the protocol is in `service::idempotency`.

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
    /// Plaintext body of a row written before responses were encrypted.
    pub response_body: Option<Vec<u8>>,
    /// The body, encrypted (`crypto::Purpose::IdempotentResponse`).
    pub response_enc: Option<Vec<u8>>,
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
                  response_enc = NULL,
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
                  response_headers AS "response_headers: Json<Vec<(String, String)>>", response_body, response_enc
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

/// Keep the response for replays; `body_enc` is the encrypted body.
pub async fn complete(
    conn: &mut PgConnection,
    tenant_id: &str,
    key: &str,
    status: i16,
    headers: &[(String, String)],
    body_enc: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE idempotency_keys SET state = 'completed', locked_until = NULL, response_status = $3,
                  response_headers = $4, response_body = NULL, response_enc = $5
           WHERE tenant_id = $1 AND key = $2"#,
        tenant_id,
        key,
        status,
        Json(headers) as _,
        body_enc
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

/// A kept response that is not under the current master key: encrypted with an older
/// one, or (`enc` None) a plaintext body from before responses were encrypted.
#[derive(Debug)]
pub struct StaleResponse {
    pub tenant_id: String,
    pub key: String,
    pub enc: Option<Vec<u8>>,
    pub body: Option<Vec<u8>>,
}

/// Kept responses to re-encrypt (`shipgate rotate-keys`), in key order after `after`.
pub async fn stale_responses(
    conn: &mut PgConnection,
    current: i16,
    after: (&str, &str),
    limit: i64,
) -> sqlx::Result<Vec<StaleResponse>> {
    sqlx::query_as!(
        StaleResponse,
        r#"SELECT tenant_id, key, response_enc AS enc, response_body AS body FROM idempotency_keys
           WHERE state = 'completed'
             AND ((response_enc IS NOT NULL AND get_byte(response_enc, 0) <> $1)
                  OR (response_enc IS NULL AND response_body IS NOT NULL))
             AND (tenant_id, key) > ($2, $3)
           ORDER BY tenant_id, key LIMIT $4"#,
        i32::from(current),
        after.0,
        after.1,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Replace a kept response by `new_enc` only if it is still what was read (compare-and-set);
/// the plaintext column is emptied in the same statement.
pub async fn swap_response(conn: &mut PgConnection, old: &StaleResponse, new_enc: &[u8]) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        r#"UPDATE idempotency_keys SET response_enc = $5, response_body = NULL
           WHERE tenant_id = $1 AND key = $2 AND state = 'completed'
             AND response_enc IS NOT DISTINCT FROM $3 AND response_body IS NOT DISTINCT FROM $4"#,
        old.tenant_id,
        old.key,
        old.enc.as_deref(),
        old.body.as_deref(),
        new_enc
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
