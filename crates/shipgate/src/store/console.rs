//! Console sessions (`console_sessions`): stored by the SHA-256 of the cookie value.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub async fn insert_session(
    conn: &mut PgConnection,
    id_hash: &[u8],
    tenant_id: &str,
    api_key_id: &str,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO console_sessions (id_hash, tenant_id, api_key_id, expires_at) VALUES ($1, $2, $3, $4)",
        id_hash,
        tenant_id,
        api_key_id,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct SessionRow {
    pub tenant_id: String,
    pub api_key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A live session: not revoked, its absolute end not reached, not idle longer than
/// `idle_secs`, and its API key not revoked. Marks it seen now.
pub async fn touch_session(
    conn: &mut PgConnection,
    id_hash: &[u8],
    idle_secs: f64,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        r#"UPDATE console_sessions s SET last_seen_at = now()
           FROM api_keys k
           WHERE s.id_hash = $1 AND k.id = s.api_key_id AND k.revoked_at IS NULL
             AND s.revoked_at IS NULL AND s.expires_at > now()
             AND s.last_seen_at > now() - make_interval(secs => $2)
           RETURNING s.tenant_id, s.api_key_id, s.created_at, s.expires_at, s.last_seen_at"#,
        id_hash,
        idle_secs
    )
    .fetch_optional(conn)
    .await
}

/// Sign a session out; false when there was no live one.
pub async fn revoke_session(conn: &mut PgConnection, id_hash: &[u8]) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE console_sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL",
        id_hash
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Forget sessions that ended more than a day ago (housekeeping).
pub async fn purge_ended(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'"
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
