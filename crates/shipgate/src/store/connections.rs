//! Carrier connections. Credentials and tokens are stored only as ciphertexts.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

#[derive(Debug, Clone)]
pub struct ConnectionRow {
    pub tenant_id: String,
    pub id: String,
    pub carrier: String,
    pub name: String,
    pub base_url: Option<String>,
    pub credentials_enc: Vec<u8>,
    pub credential_fields: Vec<String>,
    pub settings: Json<serde_json::Map<String, serde_json::Value>>,
    pub status: String,
    pub status_detail: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewConnection<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub carrier: &'a str,
    pub name: &'a str,
    pub base_url: Option<&'a str>,
    pub credentials_enc: &'a [u8],
    pub credential_fields: &'a [String],
    pub settings: &'a serde_json::Map<String, serde_json::Value>,
}

pub async fn insert(conn: &mut PgConnection, c: &NewConnection<'_>) -> sqlx::Result<ConnectionRow> {
    sqlx::query_as!(
        ConnectionRow,
        r#"INSERT INTO connections (tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields, settings)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                     settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                     status, status_detail, verified_at, created_at, updated_at"#,
        c.tenant_id,
        c.id,
        c.carrier,
        c.name,
        c.base_url,
        c.credentials_enc,
        c.credential_fields,
        Json(c.settings) as _,
    )
    .fetch_one(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"SELECT tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                  settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                  status, status_detail, verified_at, created_at, updated_at
           FROM connections WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"#,
        tenant_id,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn list(
    conn: &mut PgConnection,
    tenant_id: &str,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"SELECT tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                  settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                  status, status_detail, verified_at, created_at, updated_at
           FROM connections
           WHERE tenant_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        tenant_id,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

pub struct ConnectionUpdate<'a> {
    pub name: &'a str,
    pub base_url: Option<&'a str>,
    pub credentials_enc: &'a [u8],
    pub credential_fields: &'a [String],
    pub settings: &'a serde_json::Map<String, serde_json::Value>,
    /// New credentials invalidate the cached token and the misconfigured mark.
    pub credentials_changed: bool,
}

pub async fn update(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    u: &ConnectionUpdate<'_>,
) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"UPDATE connections SET name = $3, base_url = $4, credentials_enc = $5, credential_fields = $6, settings = $7,
                  token_enc = CASE WHEN $8 THEN NULL ELSE token_enc END,
                  status = CASE WHEN $8 THEN 'active' ELSE status END,
                  status_detail = CASE WHEN $8 THEN NULL ELSE status_detail END,
                  updated_at = now()
           WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
           RETURNING tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                     settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                     status, status_detail, verified_at, created_at, updated_at"#,
        tenant_id,
        id,
        u.name,
        u.base_url,
        u.credentials_enc,
        u.credential_fields,
        Json(u.settings) as _,
        u.credentials_changed,
    )
    .fetch_optional(conn)
    .await
}

/// Soft delete: shipments keep pointing at the row; its secrets are wiped.
pub async fn delete(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE connections SET deleted_at = now(), token_enc = NULL, credentials_enc = '\\x'::bytea, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        tenant_id,
        id
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_status(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    status: &str,
    detail: Option<&str>,
    verified: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE connections SET status = $3, status_detail = $4,
                verified_at = CASE WHEN $5 THEN now() ELSE verified_at END, updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id,
        status,
        detail,
        verified
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_token(conn: &mut PgConnection, tenant_id: &str, id: &str) -> sqlx::Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar!("SELECT token_enc FROM connections WHERE tenant_id = $1 AND id = $2", tenant_id, id)
        .fetch_optional(conn)
        .await?
        .flatten())
}

pub async fn set_token(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    token_enc: Option<&[u8]>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE connections SET token_enc = $3, token_updated_at = now() WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        id,
        token_enc
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Take the connection's token-renewal lock (session-level advisory lock; released by
/// [`unlock_token`] or when the database connection closes).
pub async fn lock_token(conn: &mut PgConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_lock(hashtextextended('shipgate:token:' || $1, 0))", id).fetch_one(conn).await?;
    Ok(())
}

pub async fn unlock_token(conn: &mut PgConnection, id: &str) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_unlock(hashtextextended('shipgate:token:' || $1, 0))", id).fetch_one(conn).await?;
    Ok(())
}

/// Connections of `carrier` holding the credential `credential` whose token was not
/// renewed for `idle_days` (a carrier's keep-alive, `carriers::descriptor::KeepAlive`).
pub async fn due_for_keep_alive(
    conn: &mut PgConnection,
    carrier: &str,
    credential: &str,
    idle_days: i32,
) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as!(
        ConnectionRow,
        r#"SELECT tenant_id, id, carrier, name, base_url, credentials_enc, credential_fields,
                  settings AS "settings: Json<serde_json::Map<String, serde_json::Value>>",
                  status, status_detail, verified_at, created_at, updated_at
           FROM connections
           WHERE carrier = $1 AND deleted_at IS NULL AND $2 = ANY(credential_fields)
             AND (token_updated_at IS NULL OR token_updated_at < now() - make_interval(days => $3))
           ORDER BY token_updated_at NULLS FIRST LIMIT 100"#,
        carrier,
        credential,
        idle_days
    )
    .fetch_all(conn)
    .await
}

pub struct CiphertextRow {
    pub tenant_id: String,
    pub id: String,
    pub credentials_enc: Vec<u8>,
    pub token_enc: Option<Vec<u8>>,
}

/// Connections holding a ciphertext not written with key `current` (the key id is the
/// first byte), in (tenant, id) order after `after` ("tenant/id"), for key rotation.
pub async fn stale_ciphertexts(
    conn: &mut PgConnection,
    current: i16,
    after: &str,
    limit: i64,
) -> sqlx::Result<Vec<CiphertextRow>> {
    sqlx::query_as!(
        CiphertextRow,
        r#"SELECT tenant_id, id, credentials_enc, token_enc FROM connections
           WHERE (get_byte(credentials_enc, 0) <> $1 OR (token_enc IS NOT NULL AND get_byte(token_enc, 0) <> $1))
             AND tenant_id || '/' || id > $2
           ORDER BY tenant_id || '/' || id LIMIT $3"#,
        i32::from(current),
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Replace the credentials ciphertext only if it is still `old` (compare-and-set).
pub async fn swap_credentials_ciphertext(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    old: &[u8],
    new: &[u8],
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE connections SET credentials_enc = $4 WHERE tenant_id = $1 AND id = $2 AND credentials_enc = $3",
        tenant_id,
        id,
        old,
        new
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Replace the cached token ciphertext only if it is still `old` (compare-and-set).
pub async fn swap_token_ciphertext(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    old: &[u8],
    new: &[u8],
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE connections SET token_enc = $4 WHERE tenant_id = $1 AND id = $2 AND token_enc = $3",
        tenant_id,
        id,
        old,
        new
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
