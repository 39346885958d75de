//! What a pushing connection received and refused, as the console's Inbound page shows it.

use chrono::{DateTime, Utc};

use crate::store::inbound_log::{PushRow, RefusalRow};

/// A push the gateway took (stored, acknowledged).
#[derive(Debug, Clone)]
pub struct InboundPush {
    pub received_at: DateTime<Utc>,
    /// The carrier's own key of the push (an AWB and update number, or an event id).
    pub key: String,
    pub what: Option<String>,
    pub shipment_id: Option<String>,
}

/// A push the gateway refused (wrong credentials, or a body the carrier's format refuses).
#[derive(Debug, Clone)]
pub struct InboundRefusal {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
}

impl From<PushRow> for InboundPush {
    fn from(r: PushRow) -> Self {
        InboundPush { received_at: r.received_at, key: r.key, what: r.what, shipment_id: r.shipment_id }
    }
}

impl From<RefusalRow> for InboundRefusal {
    fn from(r: RefusalRow) -> Self {
        InboundRefusal { at: r.at, kind: r.kind, detail: r.detail }
    }
}
