//! What the console's Inbound page shows per pushing connection: the latest pushes
//! received (both inbound tables) and the latest refused ones.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug)]
pub struct PushRow {
    pub received_at: DateTime<Utc>,
    /// The carrier's own key of the push (an AWB and update number, or an event id).
    pub key: String,
    pub what: Option<String>,
    pub shipment_id: Option<String>,
}

/// A connection's latest pushes, newest first.
pub async fn latest_pushes(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<PushRow>> {
    sqlx::query_as!(
        PushRow,
        r#"SELECT received_at AS "received_at!", key AS "key!", what, shipment_id FROM (
             (SELECT received_at, awb || ' #' || status_update_number AS key,
                     NULL::text AS what, shipment_id
              FROM inbound_pushes WHERE tenant_id = $1 AND connection_id = $2
              ORDER BY received_at DESC LIMIT $3)
             UNION ALL
             (SELECT received_at, event_id AS key, coalesce(event, '') || ' ' || coalesce(tracking_number, '') AS what,
                     shipment_id
              FROM inbound_webhooks WHERE tenant_id = $1 AND connection_id = $2
              ORDER BY received_at DESC LIMIT $3)
           ) p ORDER BY received_at DESC LIMIT $3"#,
        tenant_id,
        connection_id,
        limit
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug)]
pub struct RefusalRow {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
}

pub async fn record_refusal(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    kind: &str,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO inbound_refusals (tenant_id, connection_id, kind, detail) VALUES ($1, $2, $3, left($4, 500))",
        tenant_id,
        connection_id,
        kind,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A connection's latest refused pushes, newest first.
pub async fn latest_refusals(
    conn: &mut PgConnection,
    tenant_id: &str,
    connection_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<RefusalRow>> {
    sqlx::query_as!(
        RefusalRow,
        r#"SELECT at, kind, detail FROM inbound_refusals WHERE tenant_id = $1 AND connection_id = $2
           ORDER BY id DESC LIMIT $3"#,
        tenant_id,
        connection_id,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Forget refusals older than a week (housekeeping).
pub async fn purge_refusals(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let r = sqlx::query!("DELETE FROM inbound_refusals WHERE at < now() - interval '7 days'").execute(conn).await?;
    Ok(r.rows_affected())
}
