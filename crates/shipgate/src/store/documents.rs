//! The documents kept with a shipment (a proof of delivery's signature): bytes stored
//! once per content hash, read by tenant, purged after the retention.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A document's description (no bytes).
#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub id: String,
    pub shipment_id: String,
    pub kind: String,
    pub content_type: String,
    pub size: i32,
    pub created_at: DateTime<Utc>,
}

pub struct NewDocument<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    pub shipment_id: &'a str,
    pub kind: &'a str,
    pub content_type: &'a str,
    pub sha256: &'a [u8],
    pub content: &'a [u8],
}

/// Store the document unless the shipment already holds these bytes; answers the
/// stored one (`true` when it was stored now).
pub async fn insert_once(conn: &mut PgConnection, d: &NewDocument<'_>) -> sqlx::Result<(DocumentRow, bool)> {
    let size = i32::try_from(d.content.len()).unwrap_or(i32::MAX);
    let inserted = sqlx::query_as!(
        DocumentRow,
        "INSERT INTO shipment_documents (tenant_id, id, shipment_id, kind, content_type, size, sha256, content)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, shipment_id, sha256) DO NOTHING
         RETURNING id, shipment_id, kind, content_type, size, created_at",
        d.tenant_id,
        d.id,
        d.shipment_id,
        d.kind,
        d.content_type,
        size,
        d.sha256,
        d.content
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        return Ok((row, true));
    }
    let row = sqlx::query_as!(
        DocumentRow,
        "SELECT id, shipment_id, kind, content_type, size, created_at FROM shipment_documents
         WHERE tenant_id = $1 AND shipment_id = $2 AND sha256 = $3",
        d.tenant_id,
        d.shipment_id,
        d.sha256
    )
    .fetch_one(conn)
    .await?;
    Ok((row, false))
}

/// A shipment's documents, oldest first.
pub async fn list(conn: &mut PgConnection, tenant_id: &str, shipment_id: &str) -> sqlx::Result<Vec<DocumentRow>> {
    sqlx::query_as!(
        DocumentRow,
        "SELECT id, shipment_id, kind, content_type, size, created_at FROM shipment_documents
         WHERE tenant_id = $1 AND shipment_id = $2 ORDER BY id",
        tenant_id,
        shipment_id
    )
    .fetch_all(conn)
    .await
}

/// One document's description and bytes.
pub async fn get(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    id: &str,
) -> sqlx::Result<Option<(DocumentRow, Vec<u8>)>> {
    let row = sqlx::query!(
        "SELECT id, shipment_id, kind, content_type, size, created_at, content FROM shipment_documents
         WHERE tenant_id = $1 AND shipment_id = $2 AND id = $3",
        tenant_id,
        shipment_id,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        let doc = DocumentRow {
            id: r.id,
            shipment_id: r.shipment_id,
            kind: r.kind,
            content_type: r.content_type,
            size: r.size,
            created_at: r.created_at,
        };
        (doc, r.content)
    }))
}

/// How many documents the tenant holds (the sandbox's figures).
pub async fn count(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<i64> {
    let n = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM shipment_documents WHERE tenant_id = $1"#, tenant_id)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

/// Delete documents older than the retention; returns how many went.
pub async fn purge_older_than(conn: &mut PgConnection, days: i32) -> sqlx::Result<u64> {
    let r = sqlx::query!("DELETE FROM shipment_documents WHERE created_at < now() - make_interval(days => $1)", days)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}
