//! Tenants and API keys.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub async fn insert_tenant(conn: &mut PgConnection, id: &str, name: &str) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO tenants (id, name) VALUES ($1, $2)", id, name).execute(conn).await?;
    Ok(())
}

/// Every tenant's id (housekeeping walks per-tenant indexes with them).
pub async fn all_ids(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!("SELECT id FROM tenants ORDER BY id").fetch_all(conn).await
}

pub async fn tenant_exists(conn: &mut PgConnection, id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1) AS \"e!\"", id).fetch_one(conn).await
}

pub async fn insert_api_key(
    conn: &mut PgConnection,
    id: &str,
    tenant_id: &str,
    env: &str,
    name: Option<&str>,
    secret_hash: &[u8],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO api_keys (id, tenant_id, env, name, secret_hash) VALUES ($1, $2, $3, $4, $5)",
        id,
        tenant_id,
        env,
        name,
        secret_hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub env: String,
    pub secret_hash: Vec<u8>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn find_api_key(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as!(ApiKeyRow, "SELECT id, tenant_id, env, secret_hash, revoked_at FROM api_keys WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// Revoke a key; false when there is no such key.
pub async fn revoke_api_key(conn: &mut PgConnection, id: &str) -> sqlx::Result<bool> {
    let r = sqlx::query!("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
