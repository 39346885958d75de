//! The carrier exchange log: every request/response with a carrier, redacted.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::Exchange;

pub async fn insert(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: Option<&str>,
    x: &Exchange,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO carrier_exchanges (tenant_id, connection_id, shipment_id, carrier, operation, method, url,
                                        request_body, response_status, response_body, duration_ms, error, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        tenant_id,
        x.connection_id,
        shipment_id,
        x.carrier,
        x.operation,
        x.method,
        x.url,
        x.request_body,
        x.response_status,
        x.response_body,
        x.duration_ms,
        x.error,
        x.at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ExchangeRow {
    pub id: i64,
    pub connection_id: String,
    pub carrier: String,
    pub operation: String,
    pub method: String,
    pub url: String,
    pub request_body: Option<String>,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn list_for_shipment(
    conn: &mut PgConnection,
    tenant_id: &str,
    shipment_id: &str,
) -> sqlx::Result<Vec<ExchangeRow>> {
    sqlx::query_as!(
        ExchangeRow,
        "SELECT id, connection_id, carrier, operation, method, url, request_body, response_status, response_body,
                duration_ms, error, created_at
         FROM carrier_exchanges WHERE tenant_id = $1 AND shipment_id = $2 ORDER BY id",
        tenant_id,
        shipment_id
    )
    .fetch_all(conn)
    .await
}
