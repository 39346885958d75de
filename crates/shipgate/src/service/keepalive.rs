//! e-Courier RefreshGUID keep-alive (seed: a UserGUID expires after 20 idle days; "the
//! RefreshGUID endpoint can be used to ensure an access token does not expire"). A
//! connection holding a directly issued GUID that has not been renewed for a week is
//! refreshed, well inside the 20 days. Repeats are harmless, so every instance may run it.
//! The periodic `keepalive` job (src/jobs) drives [`run_once`] hourly.

use std::time::Duration;

use crate::app::AppState;
use crate::carriers::CallCx;
use crate::service::shipments::save_exchanges;
use crate::store;

pub const IDLE_DAYS: i32 = 7;

pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let due = {
        let mut conn = state.db.acquire().await?;
        store::connections::ecourier_guids_to_keep_alive(&mut conn, IDLE_DAYS).await?
    };
    for row in &due {
        let cx = CallCx::new();
        let outcome = match state.client(row) {
            Ok(client) => client.verify(&cx).await,
            Err(e) => Err(e),
        };
        let mut conn = state.db.acquire().await?;
        save_exchanges(&mut conn, &row.tenant_id, None, cx.take()).await?;
        match outcome {
            Ok(()) => store::connections::set_status(&mut conn, &row.tenant_id, &row.id, "active", None, true).await?,
            Err(crate::carriers::CarrierError::Misconfigured { message }) => {
                store::connections::set_status(
                    &mut conn,
                    &row.tenant_id,
                    &row.id,
                    "misconfigured",
                    Some(&message),
                    false,
                )
                .await?
            }
            Err(e) => tracing::warn!(connection_id = %row.id, error = %e, "RefreshGUID keep-alive failed; will retry"),
        }
    }
    Ok(due.len())
}

/// One run of the periodic `keepalive` job: renew what is due, come back in an hour.
pub async fn run_job(state: &AppState) -> anyhow::Result<crate::jobs::Outcome> {
    run_once(state).await?;
    Ok(crate::jobs::Outcome::Repeat { after: Duration::from_secs(3600) })
}
