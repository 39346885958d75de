//! A background job as the API shows it (schema `JobOut`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::store::jobs::JobRow;

// No doc comment: it would become the schema's description.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JobOut)]
pub struct Job {
    /// `job_<number>`
    #[schema(example = "job_42")]
    pub id: String,
    /// booking | sink_flush | keepalive | reconcile | reconcile_schedule
    #[schema(example = "booking")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    /// queued | running | succeeded | dead
    #[schema(example = "dead")]
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When it runs next (queued) or last became due.
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros")]
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::domain::time::micros_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// A `reconcile` job's run: its pages, counts and report so far (null for other kinds).
    pub progress: Option<super::Reconciliation>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: format!("job_{}", r.id),
            kind: r.kind,
            payload: r.payload.0,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            progress: None,
        }
    }
}
