//! A connection's status as carrier calls reveal it: shared by the API (a refused
//! verification or booking) and the tracking engine (a refused poll), so it lives
//! below both.

use crate::app::AppState;
use crate::carriers::CarrierError;
use crate::store;
use crate::store::connections::ConnectionRow;

/// Mark the connection misconfigured when the carrier says so (it is then no longer
/// polled until someone fixes it), or active again after a success (`e` None).
pub async fn note_connection_outcome(state: &AppState, row: &ConnectionRow, e: Option<&CarrierError>) {
    state.forget_connection(&row.id);
    let result = async {
        let mut conn = state.db.acquire().await?;
        match e {
            Some(CarrierError::Misconfigured { message }) => {
                store::connections::set_status(
                    &mut conn,
                    &row.tenant_id,
                    &row.id,
                    "misconfigured",
                    Some(message),
                    false,
                )
                .await
            }
            None => store::connections::set_status(&mut conn, &row.tenant_id, &row.id, "active", None, true).await,
            Some(_) => Ok(()),
        }
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not record connection status");
    }
}
