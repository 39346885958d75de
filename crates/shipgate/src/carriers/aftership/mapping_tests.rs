use super::*;
use serde_json::json;

fn cp(v: Value) -> Checkpoint {
    serde_json::from_value(v).expect("checkpoint")
}

#[test]
fn every_tag_maps_and_unknown_tags_stay_raw() {
    for (tag, s) in [
        ("Pending", Status::Pending),
        ("InfoReceived", Status::InfoReceived),
        ("InTransit", Status::InTransit),
        ("OutForDelivery", Status::OutForDelivery),
        ("AttemptFail", Status::AttemptFail),
        ("Delivered", Status::Delivered),
        ("AvailableForPickup", Status::AvailableForPickup),
        ("Exception", Status::Exception),
        ("Expired", Status::Expired),
    ] {
        assert_eq!(tag_status(tag), Some(s));
    }
    let t: Tracking = serde_json::from_value(json!({"tag": "Teleported", "subtag": "Teleported_007"})).expect("t");
    let snap = snapshot_from(&t, None);
    assert!(snap.status.is_none());
    assert_eq!(snap.carrier_status.as_deref(), Some("Teleported"));
}

#[test]
fn checkpoints_become_events_with_stable_keys_and_locations() {
    let a = cp(json!({"checkpoint_time": "2026-11-22T10:00:00+05:30", "city": "Pune", "state": "MH",
        "country_iso3": "IND", "zip": "411001", "message": "Picked up", "tag": "InTransit", "subtag": "InTransit_002"}));
    let e = event_from(&a).expect("event");
    assert_eq!(e.occurred_at.to_rfc3339(), "2026-11-22T04:30:00+00:00");
    assert_eq!(e.status, Some(Status::InTransit));
    assert_eq!(e.subtag.as_deref(), Some("InTransit_002"));
    let loc = e.location.expect("location");
    assert_eq!((loc.city.as_deref(), loc.country.as_deref()), (Some("Pune"), Some("IND")));
    // The same checkpoint read again (with its creation time) keeps its key.
    let b = cp(json!({"checkpoint_time": "2026-11-22T10:00:00+05:30", "city": "Pune", "state": "MH",
        "country_iso3": "IND", "zip": "411001", "message": "Picked up", "tag": "InTransit", "subtag": "InTransit_002",
        "created_at": "2026-11-22T05:00:00Z"}));
    assert_eq!(dedup_key(&a), dedup_key(&b));
    // `country_region` is a later API version's field: not read as the country.
    let later = cp(json!({"checkpoint_time": "2026-11-22T10:00:00+05:30", "city": "Pune",
        "country_region": "IND", "tag": "InTransit"}));
    assert_eq!(event_from(&later).and_then(|e| e.location).and_then(|l| l.country), None);
    let only_location = cp(json!({"checkpoint_time": "2026-11-22T10:00:00", "location": "HUB 4", "tag": "Nope"}));
    let e = event_from(&only_location).expect("event");
    assert_eq!(e.status, None);
    assert_eq!(e.raw_code.as_deref(), Some("Nope"));
    assert_eq!(e.location.and_then(|l| l.city).as_deref(), Some("HUB 4"));
    assert!(event_from(&cp(json!({"message": "no time"}))).is_none());
}

#[test]
fn estimated_delivery_reads_the_2024_04_fields() {
    let edd = |v: Value| {
        let t: Tracking = serde_json::from_value(v).expect("tracking");
        estimated_delivery(&t).map(|d| d.to_rfc3339())
    };
    // The carrier's date of the 2024-04 model.
    assert_eq!(edd(json!({"expected_delivery": "2026-11-27"})).as_deref(), Some("2026-11-27T00:00:00+00:00"));
    assert_eq!(
        edd(json!({"expected_delivery": "2026-11-27T14:00:00+02:00"})).as_deref(),
        Some("2026-11-27T12:00:00+00:00")
    );
    // AfterShip's current EDD wins over the carrier's.
    assert_eq!(
        edd(
            json!({"latest_estimated_delivery": {"type": "specific", "source": "Carrier EDD", "datetime": "2026-11-25",
            "datetime_min": null, "datetime_max": null}, "expected_delivery": "2026-11-27"})
        )
        .as_deref(),
        Some("2026-11-25T00:00:00+00:00")
    );
    assert_eq!(
        edd(json!({"latest_estimated_delivery": null,
            "aftership_estimated_delivery_date": {"estimated_delivery_date": "2026-11-27T12:00:00+00:00",
                "confidence_code": 0.8}}))
        .as_deref(),
        Some("2026-11-27T12:00:00+00:00")
    );
    // A window without a date counts by its latest end.
    assert_eq!(
        edd(json!({"custom_estimated_delivery_date": {"type": "range", "datetime": null,
            "datetime_min": "2026-11-26", "datetime_max": "2026-11-28"}}))
        .as_deref(),
        Some("2026-11-28T00:00:00+00:00")
    );
    // 2024-10's `courier_estimated_delivery_date` is not part of 2024-04.
    assert_eq!(edd(json!({"courier_estimated_delivery_date": {"estimated_delivery_date": "2026-11-27"}})), None);
}

#[test]
fn meta_codes_map_to_classes() {
    let env = |code: i64| -> Envelope {
        serde_json::from_value(json!({"meta": {"code": code, "message": "m", "type": "BadRequest"}, "data": {}}))
            .expect("env")
    };
    let kind = |status, code| classify("op", status, Some(&env(code)), None).map_err(|e| e.kind()).err();
    assert_eq!(kind(401, 401), Some("misconfigured"));
    assert_eq!(kind(404, 4004), Some("not_found"));
    for c in [4005, 4017, 4010, 4013, 4016, 4008] {
        assert_eq!(kind(400, c), Some("rejected"), "{c}");
    }
    // SDK 2.0.2 error list: 4013 = INACTIVE_RETRACK_NOT_ALLOWED, 4016 = RETRACK_ONCE_ALLOWED.
    let msg = |code| classify("retrack", 400, Some(&env(code)), None).err().map(|e| e.message()).unwrap_or_default();
    assert!(msg(4013).contains("still active") && msg(4013).contains("4013"), "{}", msg(4013));
    assert!(msg(4016).contains("limit") && msg(4016).contains("4016"), "{}", msg(4016));
    assert_eq!(kind(429, 429), Some("transient"));
    assert_eq!(kind(500, 500), Some("transient"));
    assert_eq!(kind(503, 503), Some("transient"));
    assert_eq!(kind(200, 200), None);
    assert_eq!(classify("op", 502, None, None).map_err(|e| e.kind()).err(), Some("transient"));
    assert_eq!(classify("op", 200, None, None).map_err(|e| e.kind()).err(), Some("protocol"));
    let msg = classify("op", 400, Some(&env(4005)), None).err().map(|e| e.message()).unwrap_or_default();
    assert!(msg.contains('m') && msg.contains("4005"), "{msg}");
}

fn item() -> Value {
    json!({"slug": "fedex", "service_type_name": "FEDEX HOME DELIVERY",
        "origin_address": {"country": "USA", "state": "FL", "city": "Orlando", "postal_code": "32804",
            "raw_location": "Orlando, Florida, 32804, USA"},
        "destination_address": {"country": "USA", "postal_code": "33101"},
        "weight": {"unit": "kg", "value": 1.5}, "package_count": 1, "pickup_time": "2026-11-23 09:00:00"})
}

#[test]
fn estimate_items_follow_the_seed_rules() {
    assert!(validate_estimate_items(&[item()]).is_empty());
    assert!(!validate_estimate_items(&[]).is_empty());
    assert!(
        validate_estimate_items(&std::iter::repeat_n(item(), 6).collect::<Vec<_>>()).iter().any(|e| e.field == "items")
    );
    let mut bad = item();
    bad["origin_address"]["country"] = json!("US");
    bad["destination_address"] = Value::Null;
    bad["slug"] = Value::Null;
    bad["pickup_time"] = Value::Null;
    bad["colour"] = json!("red");
    let fields: Vec<String> = validate_estimate_items(&[bad]).into_iter().map(|e| e.field).collect();
    for f in [
        "items[0].origin_address.country",
        "items[0].destination_address",
        "items[0].slug",
        "items[0].pickup_time",
        "items[0].colour",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing in {fields:?}");
    }
    let mut est = item();
    est["pickup_time"] = Value::Null;
    est["estimated_pickup"] = json!({"order_time": "2026-11-23 09:00:00"});
    assert!(validate_estimate_items(std::slice::from_ref(&est)).is_empty());
    // Every field of the 2024-04 estimated_pickup model is accepted (SDK README example).
    est["estimated_pickup"] = json!({"order_time": "2021-07-01 15:04:05", "order_cutoff_time": "20:00:00",
        "business_days": [1, 2, 3, 4, 5, 6, 7], "order_processing_time": {"unit": "day", "value": 0}});
    assert!(validate_estimate_items(std::slice::from_ref(&est)).is_empty());
    est["estimated_pickup"] = json!({"order_time": "2021-07-01T15:04:05Z", "order_cutoff_time": "8pm",
        "business_days": [0, 8], "order_processing_time": {"unit": "day", "value": 1.5}, "colour": 1});
    let fields: Vec<String> = validate_estimate_items(&[est]).into_iter().map(|e| e.field).collect();
    for f in ["order_time", "order_cutoff_time", "business_days", "order_processing_time.value", "colour"] {
        assert!(fields.iter().any(|x| *x == format!("items[0].estimated_pickup.{f}")), "{f} missing in {fields:?}");
    }
}

#[test]
fn the_2025_01_country_region_is_refused_with_a_hint() {
    let mut it = item();
    it["destination_address"] = json!({"country_region": "USA"});
    let errors = validate_estimate_items(&[it]);
    let hint = errors.iter().find(|e| e.field == "items[0].destination_address.country_region").expect("named");
    assert!(hint.message.contains("`country`"), "{}", hint.message);
    assert!(errors.iter().any(|e| e.field == "items[0].destination_address.country"), "country is required");
}
