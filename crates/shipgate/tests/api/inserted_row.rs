//! A new shipment's insert sends no row back: the caller goes on with
//! `NewShipment::as_row` (the booking's order request is built from it, an inbound push
//! applies its scan to it). These tests read the stored row back and hold `as_row` to it,
//! field by field as the API shows them, so a column default or a value the database
//! rewrites cannot drift from what the gateway assumes.

use chrono::{DurationRound as _, Utc};
use serde_json::{Value, json};
use shipgate::domain::{BookingState, Metadata, ShipmentPlan};
use shipgate::service::views::Shipment;
use shipgate::store::Actor;
use shipgate::store::shipments::{Creation, NewShipment, ShipmentRow, get, insert_with_history};

use crate::helpers::spawn_app;

/// The shipment as the API would show it, with the row's tenant (not in the view).
fn shown(row: ShipmentRow) -> (String, Value) {
    let tenant = row.tenant_id.clone();
    let view = Shipment::try_from(row).expect("the row reads as a shipment");
    (tenant, serde_json::to_value(view).expect("serialize"))
}

async fn stored_equals_as_row(app: &crate::helpers::TestApp, new: &NewShipment<'_>) {
    let at = Utc::now().duration_trunc(chrono::Duration::microseconds(1)).expect("trunc");
    let written = new.as_row(at);
    // The JSON columns go in as the callers write them: the view's text of `as_row`.
    let view = Shipment::try_from(written.clone()).expect("the row reads as a shipment");
    let detail = json!({"source": "test"});
    let mut conn = app.db.acquire().await.expect("conn");
    insert_with_history(
        &mut conn,
        new,
        &Creation {
            actor: &Actor::ApiKey("key_test".to_owned()),
            action: "created",
            detail: &detail,
            at,
            event: (&shipgate::ids::new_id("evt"), r#"{"shipment":{}}"#),
            json: view.plan_json(),
        },
    )
    .await
    .expect("insert");
    let stored = get(&mut conn, new.tenant_id, new.id).await.expect("read").expect("the shipment is stored");
    assert_eq!(shown(written), shown(stored), "as_row is the row the insert wrote");
}

#[tokio::test]
async fn a_booking_goes_on_with_the_row_it_stored() {
    let app = spawn_app().await;
    let plan: ShipmentPlan = serde_json::from_value(json!({
        "reference": "PO-\"7\" é",
        "service": "2HR",
        "stops": [
            {"sequence": 1, "type": "pickup", "name": "James Madison", "company": "Acme", "phone": "+1 407 555 0100",
             "email": "ship@example.com", "scheduled_at": "2026-11-23T06:00:00-05:00",
             "address": {"line1": "2251 Orange Blossom Trail", "line2": "Dock 4", "city": "Orlando", "state": "FL",
                         "postal_code": "32804", "country": "US"}},
            {"sequence": 2, "type": "delivery", "name": "Bryan Moore",
             "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "state": "FL",
                         "postal_code": "32804", "country": "US"}}
        ],
        "parcels": [
            {"reference": "PKG-1", "quantity": 2, "weight": {"value": 0.30000000000000004, "unit": "lb"},
             "dimensions": {"length": 10.5, "width": 3, "height": 1e-3, "unit": "in"}}
        ],
        "declared_value": {"amount": "125.50", "currency": "USD"},
        "cod_amount": {"amount": "10", "currency": "USD"},
        "notes": "Ring twice\nthen wait\t\u{7f}"
    }))
    .expect("plan");
    let metadata: Metadata = [
        ("zeta".to_owned(), "last".to_owned()),
        ("a".to_owned(), "first".to_owned()),
        ("ü".to_owned(), "x".to_owned()),
    ]
    .into_iter()
    .collect();
    let channel = serde_json::value::RawValue::from_string(
        r#"{"ecomdash": {"shipment_id": 17, "connection_id": "con_sink"}}"#.to_owned(),
    )
    .expect("raw");
    let id = shipgate::ids::new_id("shp");
    let new = NewShipment {
        tenant_id: &app.tenant_id,
        id: &id,
        connection_id: &app.connection_id,
        carrier: "ecourier",
        carrier_reference: Some("SG-ORDER-1"),
        tracking_number: None,
        plan: &plan,
        metadata: &metadata,
        channel: Some(&channel),
        booking_state: Some(BookingState::Pending),
    };
    stored_equals_as_row(&app, &new).await;
}

#[tokio::test]
async fn a_pushed_number_goes_on_with_the_row_it_stored() {
    // An inbound push's unknown number: no plan, no booking, a tracking number.
    let app = spawn_app().await;
    let id = shipgate::ids::new_id("shp");
    let new = NewShipment {
        tenant_id: &app.tenant_id,
        id: &id,
        connection_id: &app.connection_id,
        carrier: "ecourier",
        carrier_reference: None,
        tracking_number: Some("AWB 123"),
        plan: &ShipmentPlan::default(),
        metadata: &Metadata::new(),
        channel: None,
        booking_state: None,
    };
    stored_equals_as_row(&app, &new).await;
}
