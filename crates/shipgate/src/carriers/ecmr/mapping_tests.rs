use super::*;
use crate::domain::{CountryCode, StopType, Weight, WeightUnit};
use chrono::DateTime;
use std::time::Duration;

fn addr(city: &str) -> Address {
    Address {
        line1: "Main 1".into(),
        line2: Some("Unit 2".into()),
        city: city.into(),
        state: None,
        postal_code: Some("1011 AB".into()),
        country: CountryCode::try_from("NL".to_owned()).expect("country"),
    }
}

fn stop(seq: u32, t: StopType, name: Option<&str>, city: &str) -> Stop {
    Stop {
        sequence: seq,
        stop_type: t,
        name: name.map(str::to_owned),
        company: Some(format!("{city} BV")),
        address: addr(city),
        phone: None,
        email: None,
        scheduled_at: None,
        window_start: None,
        window_end: None,
        notes: None,
    }
}

fn parcel(reference: Option<&str>, description: Option<&str>) -> Parcel {
    Parcel {
        reference: reference.map(str::to_owned),
        quantity: 2,
        weight: None,
        dimensions: None,
        description: description.map(str::to_owned),
        pickup_stop: None,
        delivery_stop: None,
    }
}

fn plan() -> ShipmentPlan {
    let mut first = stop(1, StopType::Pickup, Some("Sender"), "Amsterdam");
    first.window_start = Some(DateTime::parse_from_rfc3339("2026-11-23T08:00:00+01:00").expect("time"));
    let mut p = parcel(Some("PAL-1"), Some("Pallets of tiles"));
    p.weight = Some(Weight { value: 250.0, unit: WeightUnit::Kg });
    p.dimensions = Some(Dimensions { length: 120.0, width: 80.0, height: 100.0, unit: LengthUnit::Cm });
    ShipmentPlan {
        reference: None,
        service: None,
        stops: vec![
            first,
            stop(2, StopType::Delivery, None, "Utrecht"),
            stop(3, StopType::Both, Some("Last"), "Antwerp"),
        ],
        parcels: vec![p, parcel(Some("BOX-9"), None), parcel(None, Some(" "))],
        declared_value: None,
        cod_amount: None,
        notes: Some("Keep dry".into()),
    }
}

#[test]
fn plan_becomes_a_cmr_shipment() {
    let s = shipment_from_plan(&plan(), "SG-ORDER-1");
    assert_eq!(s.reference, "SG-ORDER-1", "no plan reference: our order number");
    let consignor = s.consignor.as_ref().expect("consignor");
    assert_eq!(consignor.name.as_deref(), Some("Sender"));
    assert_eq!(consignor.address, "Main 1, Unit 2");
    let taking_over = s.taking_over.as_ref().expect("taking over");
    assert_eq!(taking_over.place.city, "Amsterdam");
    assert_eq!(taking_over.date.as_deref(), Some("2026-11-23T08:00:00+01:00"));
    // The last delivery-type stop, `both` included.
    let consignee = s.consignee.as_ref().expect("consignee");
    assert_eq!((consignee.name.as_deref(), consignee.city.as_str()), (Some("Last"), "Antwerp"));
    assert_eq!(s.delivery.as_ref().map(|d| d.date.is_none()), Some(true));
    assert_eq!(s.goods.len(), 3);
    assert_eq!(s.goods[0].packages, 2);
    assert_eq!(s.goods[0].description, "Pallets of tiles");
    assert_eq!(s.goods[0].marks.as_deref(), Some("PAL-1"));
    assert_eq!(s.goods[0].gross_weight_kg, Some(500.0));
    assert_eq!(s.goods[0].volume_m3, Some(1.92));
    assert_eq!(s.goods[1].description, "BOX-9", "no description: the reference");
    assert_eq!(s.goods[2].description, "Goods", "neither: a generic description");
    assert_eq!(s.instructions.as_deref(), Some("Keep dry"));

    let mut with_ref = plan();
    with_ref.reference = Some("SO-1001".into());
    with_ref.stops[0].name = None;
    let s = shipment_from_plan(&with_ref, "SG-ORDER-1");
    assert_eq!(s.reference, "SO-1001");
    assert_eq!(s.consignor.and_then(|c| c.name).as_deref(), Some("Amsterdam BV"), "company when no name");
}

#[test]
fn what_the_store_body_requires_is_asked_of_our_fields() {
    let mut p = plan();
    assert_eq!(missing_for_store(&p), None, "a name (or company) and the pickup's window_start suffice");
    p.stops[0].name = None;
    p.stops[0].company = Some(" ".into());
    assert!(missing_for_store(&p).is_some_and(|m| m.starts_with("stops[0].name: ") && m.contains("consignor")));
    let mut p = plan();
    p.stops[2].name = None;
    p.stops[2].company = None;
    assert!(missing_for_store(&p).is_some_and(|m| m.starts_with("stops[2].name: ") && m.contains("consignee")));
    let mut p = plan();
    p.stops[0].window_start = None;
    assert!(missing_for_store(&p).is_some_and(|m| m.starts_with("stops[0].scheduled_at: ")));
}

#[test]
fn history_times_without_a_zone_are_read_as_utc() {
    assert_eq!(
        parse_time("2026-11-23T08:00:00+01:00").map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-23T07:00:00+00:00")
    );
    assert_eq!(parse_time("2026-11-23 08:00:00").map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-23T08:00:00+00:00"));
    assert_eq!(parse_time("2026-11-23T08:00:00.250").map(|t| t.timestamp_millis() % 1000), Some(250));
    assert_eq!(parse_time("yesterday"), None);
}

#[test]
fn missing_stops_are_left_for_the_carrier_to_refuse() {
    let mut p = plan();
    p.stops.retain(|s| s.stop_type == StopType::Pickup);
    let s = shipment_from_plan(&p, "X");
    assert!(s.consignee.is_none() && s.delivery.is_none());
    let v = serde_json::to_value(wire::StoreRequest { shipment: s }).expect("json");
    assert!(v["shipment"].get("consignee").is_none(), "{v}");
}

#[test]
fn every_status_maps_as_the_contract_says() {
    for raw in ["created", "sent", "accepted", "planned"] {
        assert_eq!(map_status(raw), Some((Status::InfoReceived, None)), "{raw}");
    }
    for raw in ["loading", "departed", "in_progress"] {
        assert_eq!(map_status(raw), Some((Status::InTransit, None)), "{raw}");
    }
    assert_eq!(map_status("arrived"), Some((Status::OutForDelivery, None)));
    for raw in ["unloaded", "delivered", "Delivered"] {
        assert_eq!(map_status(raw), Some((Status::Delivered, Some("Delivered_003".into()))), "{raw}");
    }
    assert_eq!(map_status("cancelled"), Some((Status::Exception, Some("Exception_020".into()))));
    assert_eq!(map_status("teleported"), None);
}

#[test]
fn details_become_a_snapshot_with_actors_and_documents() {
    let d: wire::Details = serde_json::from_value(serde_json::json!({
        "tracking_number": "ECMR1", "reference": "SO-1", "status": "departed",
        "history": [
            {"status": "created", "at": "2026-11-23T08:00:00Z", "by": "org-demo (API)"},
            {"status": "loading", "at": "2026-11-23T09:00:00+01:00", "by": "Driver P. de Vries", "note": "Dock 4"},
            {"status": "beamed", "at": "2026-11-23T09:30:00Z", "by": "Q"},
            {"status": "departed", "at": "yesterday", "by": "Driver"}
        ],
        "documents": [{"type": "cmr", "url": "https://e/cmr.pdf"}, {"type": "cmr"}]
    }))
    .expect("details");
    let snap = snapshot_from(&d);
    assert_eq!(snap.status, Some((Status::InTransit, None)));
    assert_eq!(snap.carrier_status.as_deref(), Some("departed"));
    assert_eq!(snap.events.len(), 3, "the entry without a readable time is skipped");
    let loading = &snap.events[1];
    assert_eq!(loading.actor.as_deref(), Some("Driver P. de Vries"));
    assert_eq!(loading.message.as_deref(), Some("Dock 4"));
    assert_eq!(loading.raw_code.as_deref(), Some("loading"));
    assert_eq!(loading.occurred_at.to_rfc3339(), "2026-11-23T08:00:00+00:00");
    assert_eq!(snap.events[0].message.as_deref(), Some("created"), "no note: the status");
    assert_eq!(snap.events[2].status, None, "unknown status kept raw");
    assert_eq!(snap.events[2].raw_code.as_deref(), Some("beamed"));
    assert_eq!(snapshot_from(&d).events[1].dedup_key, loading.dedup_key, "stable keys");
    assert_ne!(snap.events[0].dedup_key, loading.dedup_key);
    assert_eq!(snap.documents, vec![DocumentLink { kind: "cmr".into(), url: "https://e/cmr.pdf".into() }]);

    let unknown: wire::Details = serde_json::from_value(serde_json::json!({"status": "beamed"})).expect("details");
    let snap = snapshot_from(&unknown);
    assert_eq!((snap.status, snap.carrier_status.as_deref()), (None, Some("beamed")));
}

#[test]
fn answers_are_classified_by_what_the_caller_should_do() {
    let kind = |status, body: &str, op| match classify(status, body.as_bytes(), None, op) {
        Outcome::Ok => "ok".to_owned(),
        Outcome::TokenRefused(_) => "token".to_owned(),
        Outcome::Failed(e) => format!("{}:{}", e.kind(), e.message()),
    };
    assert_eq!(kind(201, "{}", Op::Store), "ok");
    assert_eq!(kind(401, r#"{"error":"invalid_token"}"#, Op::Details), "token");
    assert_eq!(
        kind(422, r#"{"error":"is required","field":"shipment.consignee"}"#, Op::Store),
        "rejected:shipment.consignee: is required"
    );
    assert_eq!(kind(422, r#"{"error":"nope"}"#, Op::Store), "rejected:nope");
    assert_eq!(kind(404, r#"{"error":"shipment not found"}"#, Op::Details), "not_found:shipment not found");
    assert!(kind(404, "", Op::Store).starts_with("misconfigured:"));
    assert!(kind(403, "", Op::Overview).starts_with("misconfigured:"));
    assert!(kind(500, "<html>", Op::Store).starts_with("transient:"));
    assert!(kind(503, "", Op::Details).starts_with("transient:"));
    assert!(kind(418, "", Op::Details).starts_with("protocol:"));
    match classify(429, b"", Some(Duration::from_secs(2)), Op::Details) {
        Outcome::Failed(CarrierError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
    for status in [400, 401, 403] {
        assert!(
            matches!(
                classify_token(status, br#"{"error":"invalid_client"}"#, None),
                Outcome::Failed(CarrierError::Misconfigured { .. })
            ),
            "{status}"
        );
    }
    assert!(matches!(classify_token(502, b"", None), Outcome::Failed(CarrierError::Transient { .. })));
    assert!(matches!(classify_token(200, b"{}", None), Outcome::Ok));
}

#[test]
fn paths_default_override_and_encode() {
    let p = Paths::from_setting(None);
    assert_eq!(p.shipment_of("ECMR 1/2"), "/api/shipments/ECMR%201%2F2");
    let p =
        Paths::from_setting(Some(&serde_json::json!({"token": "/oauth/token", "shipment": "/s/{tracking_number}/x"})));
    assert_eq!((p.token.as_str(), p.shipments.as_str()), ("/oauth/token", "/api/shipments"));
    assert_eq!(p.shipment_of("A1"), "/s/A1/x");
}
