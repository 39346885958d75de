//! The SQL follows the carrier registry: which carriers are polled is data the gateway
//! writes from it (`carrier_traits`), and no SQL function names a carrier.

use shipgate::carriers::{self, Capability};
use shipgate::store::carriers::{CarrierTraits, save_traits};

use crate::helpers::spawn_app;

async fn pollable(app: &crate::helpers::TestApp, carrier: &str) -> bool {
    sqlx::query_scalar("SELECT tracking_pollable_carrier($1)").bind(carrier).fetch_one(&app.db).await.expect("query")
}

async fn poll_next_at_is_set(app: &crate::helpers::TestApp, id: &str) -> bool {
    sqlx::query_scalar("SELECT poll_next_at IS NOT NULL FROM shipments WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("query")
}

#[tokio::test]
async fn the_sql_polls_exactly_the_carriers_the_registry_polls() {
    // Creating a connection (spawn_app makes one) wrote the registry's traits.
    let app = spawn_app().await;
    for c in carriers::all() {
        assert_eq!(pollable(&app, c.slug).await, c.supports(Capability::Refresh), "{}", c.slug);
    }
    assert!(!pollable(&app, "not-a-carrier").await, "an unregistered carrier is not polled");
    let naming: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = current_schema() AND p.prosrc ~ $1",
    )
    .bind(carriers::all().iter().map(|c| c.slug).collect::<Vec<_>>().join("|"))
    .fetch_all(&app.db)
    .await
    .expect("functions");
    assert!(naming.is_empty(), "SQL functions naming a carrier: {naming:?}");
}

#[tokio::test]
async fn a_change_in_the_registry_moves_the_carrier_s_shipments_on_or_off_the_schedule() {
    let app = spawn_app().await;
    let carrier = "ecourier";
    let mut traits = shipgate::service::registry::traits();
    let mine = traits.iter_mut().find(|t| t.carrier == carrier).expect("registered");
    assert!(mine.pollable);
    let booked = app.book("REG-1").await;
    let id = booked["id"].as_str().expect("id");
    assert!(poll_next_at_is_set(&app, id).await, "a booked shipment of a polled carrier is scheduled");

    // A registry in which the carrier is no longer polled takes its shipments off.
    mine.pollable = false;
    let mut conn = app.db.acquire().await.expect("conn");
    assert_eq!(save_traits(&mut conn, &traits).await.expect("save"), [carrier]);
    assert!(!pollable(&app, carrier).await);
    assert!(!poll_next_at_is_set(&app, id).await);
    assert!(save_traits(&mut conn, &traits).await.expect("save").is_empty(), "nothing changes twice");

    // The gateway's own registry puts them back.
    shipgate::service::registry::publish(&mut conn).await.expect("publish");
    assert!(pollable(&app, carrier).await);
    assert!(poll_next_at_is_set(&app, id).await);
    let unknown = CarrierTraits { carrier: "newcomer", pollable: true };
    assert!(save_traits(&mut conn, &[unknown]).await.expect("save").is_empty(), "a new carrier has no shipments");
    assert!(pollable(&app, "newcomer").await);
}
