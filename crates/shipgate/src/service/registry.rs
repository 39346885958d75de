//! The carrier registry as data the SQL reads: which carriers the tracking engine polls
//! (`carrier_traits`, read by `tracking_pollable_carrier` in the schedule trigger). Written
//! when the tracking engine starts and when a connection is created, so a carrier's row
//! exists before its first shipment is written, whichever instance writes it.

use sqlx::PgConnection;

use crate::carriers;
use crate::service::Result;
use crate::store::carriers::{CarrierTraits, save_traits};

/// Every registered carrier's traits, as the SQL sees them.
pub fn traits() -> Vec<CarrierTraits<'static>> {
    carriers::all()
        .iter()
        .map(|c| CarrierTraits { carrier: c.slug, pollable: c.available && c.polling.is_some() })
        .collect()
}

/// Write the registry's traits (one read when nothing changed).
pub async fn publish(conn: &mut PgConnection) -> Result<()> {
    let changed = save_traits(conn, &traits()).await?;
    if !changed.is_empty() {
        tracing::info!(carriers = ?changed, "carrier polling changed; their shipments' schedule follows");
    }
    Ok(())
}
