//! A reconciliation run as the API shows it (schema `ReconciliationOut`): the progress of
//! a `reconcile` job at `GET /v1/jobs/{id}` and a connection's reports at
//! `GET /v1/connections/{id}/reconciliations`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::reconciliations::ReconciliationRow;

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReconciliationOut)]
pub struct Reconciliation {
    #[schema(example = "rec_01936f0c7a2b7c3d9e8f001122334455")]
    pub id: String,
    pub connection_id: String,
    /// The durable job that walks the carrier's list (`job_<n>`).
    #[schema(example = "job_42")]
    pub job_id: String,
    /// Carrier-only shipments are imported as shipments (else only reported).
    pub import: bool,
    /// `api` (asked for) or `schedule` (the connection's `reconcile_every_hours`).
    #[schema(example = "api")]
    pub trigger: String,
    /// running | succeeded | failed
    #[schema(example = "succeeded")]
    pub state: String,
    /// Pages of the carrier's list walked so far.
    pub pages: i32,
    /// Counts (`seen`, `total_at_carrier`, `matched`, `carrier_only`, `imported`,
    /// `status_disagreements`, `fixed_forward`, `missing_at_carrier`, `calls`) and, up
    /// to 1000 each, the entries behind them (`carrier_only_sample`,
    /// `disagreement_sample`, `missing_sample`). `missing_at_carrier` is known once the
    /// walk is complete.
    #[schema(value_type = Object)]
    pub report: Value,
    /// Why a failed run stopped.
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<ReconciliationRow> for Reconciliation {
    fn from(r: ReconciliationRow) -> Self {
        Reconciliation {
            id: r.id,
            connection_id: r.connection_id,
            job_id: format!("job_{}", r.job_id),
            import: r.import,
            trigger: r.trigger,
            state: r.state,
            pages: r.pages,
            report: r.report.0,
            error: r.error,
            started_at: r.started_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}
