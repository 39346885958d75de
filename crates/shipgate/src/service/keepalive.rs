//! Keep-alive: some carriers' credentials expire when idle (e-Courier: a directly issued
//! UserGUID expires after 20 idle days, and "the RefreshGUID endpoint can be used to
//! ensure an access token does not expire", seed 001). A carrier says so in its
//! descriptor's `keep_alive`: a connection holding that credential whose token was not
//! renewed for its `idle_days` is verified again, which renews it (e-Courier's verify of
//! such a connection is RefreshGUID). Repeats are harmless, so every instance may run it.
//! The periodic `keepalive` job (src/jobs) drives [`run_once`] hourly.

use std::time::Duration;

use crate::app::AppState;
use crate::carriers::{self, CallCx};
use crate::service::Result;
use crate::service::shipments::save_exchanges;
use crate::store;

pub async fn run_once(state: &AppState) -> Result<usize> {
    let mut due = Vec::new();
    {
        let mut conn = state.db.acquire().await?;
        for carrier in carriers::all() {
            if let Some(k) = carrier.keep_alive {
                due.extend(
                    store::connections::due_for_keep_alive(&mut conn, carrier.slug, k.credential, k.idle_days).await?,
                );
            }
        }
    }
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
            Err(e) => tracing::warn!(connection_id = %row.id, carrier = %row.carrier, error = %e,
                "keep-alive failed; will retry"),
        }
    }
    Ok(due.len())
}

/// One run of the periodic `keepalive` job: renew what is due, come back in an hour.
pub async fn run_job(state: &AppState) -> Result<crate::domain::job::Outcome> {
    run_once(state).await?;
    Ok(crate::domain::job::Outcome::Repeat { after: Duration::from_secs(3600) })
}
