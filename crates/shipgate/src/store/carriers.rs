//! Carrier traits the SQL reads (`carrier_traits`, migration 20261130000006), written
//! from the carrier registry (`service::registry`).

use sqlx::PgConnection;

/// What the SQL knows about one carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierTraits<'a> {
    pub carrier: &'a str,
    /// The tracking engine polls its shipments (`tracking_pollable_carrier`).
    pub pollable: bool,
}

/// Write `traits`; the non-terminal shipments of a carrier whose trait changed are put
/// on the tracking schedule or taken off it (by the schedule trigger, as for any write
/// of `poll_next_at`). Returns the carriers that changed. When nothing is new, this is
/// one read.
pub async fn save_traits(conn: &mut PgConnection, traits: &[CarrierTraits<'_>]) -> sqlx::Result<Vec<String>> {
    let known = sqlx::query!("SELECT carrier, pollable FROM carrier_traits").fetch_all(&mut *conn).await?;
    let stale: Vec<&CarrierTraits> =
        traits.iter().filter(|t| !known.iter().any(|k| k.carrier == t.carrier && k.pollable == t.pollable)).collect();
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    let carriers: Vec<String> = stale.iter().map(|t| t.carrier.to_owned()).collect();
    let pollable: Vec<bool> = stale.iter().map(|t| t.pollable).collect();
    sqlx::query!(
        "INSERT INTO carrier_traits (carrier, pollable) SELECT * FROM UNNEST($1::text[], $2::bool[])
         ON CONFLICT (carrier) DO UPDATE SET pollable = EXCLUDED.pollable, updated_at = now()
         WHERE carrier_traits.pollable IS DISTINCT FROM EXCLUDED.pollable",
        &carriers,
        &pollable
    )
    .execute(&mut *conn)
    .await?;
    // A carrier without a row had no shipments; one whose trait changed has its
    // shipments' schedule decided again.
    let changed: Vec<String> = carriers.into_iter().filter(|c| known.iter().any(|k| &k.carrier == c)).collect();
    if !changed.is_empty() {
        sqlx::query!(
            "UPDATE shipments SET poll_next_at = NULL
             WHERE carrier = ANY($1) AND NOT tracking_is_terminal(status, subtag)",
            &changed
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(changed)
}
