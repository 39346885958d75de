//! A shipment's tracking events (deduplicated per carrier key) and its audit history
//! (who changed what).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::domain::Status;
use crate::store::Actor;

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub status: Option<Status>,
    pub subtag: Option<String>,
    pub message: Option<String>,
    pub location: Option<Json<serde_json::Value>>,
    pub raw_code: Option<String>,
    pub raw_text: Option<String>,
    pub actor: Option<String>,
    pub source: String,
    pub dedup_key: String,
    pub created_at: DateTime<Utc>,
}

pub struct NewEvent<'a> {
    pub occurred_at: DateTime<Utc>,
    pub status: Option<Status>,
    pub subtag: Option<&'a str>,
    pub message: Option<&'a str>,
    pub location: Option<&'a serde_json::Value>,
    pub raw_code: Option<&'a str>,
    pub raw_text: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub source: &'a str,
    pub dedup_key: &'a str,
}

/// Insert an event unless one with the same dedup key exists; the new id when inserted.
pub async fn insert_event(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    e: &NewEvent<'_>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"INSERT INTO tracking_events (tenant_id, shipment_id, occurred_at, status, subtag, message, location,
                                        raw_code, raw_text, source, dedup_key, actor)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (tenant_id, shipment_id, dedup_key) DO NOTHING
           RETURNING id"#,
        tenant_id,
        shipment_id,
        e.occurred_at,
        e.status.map(Status::as_str),
        e.subtag,
        e.message,
        e.location.map(Json) as _,
        e.raw_code,
        e.raw_text,
        e.source,
        e.dedup_key,
        e.actor,
    )
    .fetch_optional(conn)
    .await
}

pub async fn list_events(conn: &mut PgConnection, tenant_id: &str, shipment_id: &str) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as!(
        EventRow,
        r#"SELECT id, occurred_at, status AS "status: Status", subtag, message,
                  location AS "location: Json<serde_json::Value>",
                  raw_code, raw_text, actor, source, dedup_key, created_at
           FROM tracking_events WHERE tenant_id = $1 AND shipment_id = $2
           ORDER BY occurred_at, id"#,
        tenant_id,
        shipment_id
    )
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub detail: Json<serde_json::Value>,
}

pub async fn insert_history(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
    actor: &Actor,
    action: &str,
    detail: &serde_json::Value,
) -> sqlx::Result<()> {
    let (actor_type, actor_id) = actor.parts();
    sqlx::query!(
        "INSERT INTO shipment_history (tenant_id, shipment_id, actor_type, actor_id, action, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        tenant_id,
        shipment_id,
        actor_type,
        actor_id,
        action,
        Json(detail) as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_history(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as!(
        HistoryRow,
        r#"SELECT id, at, actor_type, actor_id, action, detail AS "detail!: Json<serde_json::Value>"
           FROM shipment_history WHERE tenant_id = $1 AND shipment_id = $2 ORDER BY id"#,
        tenant_id,
        shipment_id
    )
    .fetch_all(conn)
    .await
}
