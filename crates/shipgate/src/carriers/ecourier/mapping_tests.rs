use super::*;
use serde_json::json;

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("offset")
}

fn order(v: serde_json::Value) -> OrderOut {
    OrderOut::from_value(&json!({ "Order": v })).expect("order")
}

fn status_of(v: serde_json::Value) -> Option<(Status, Option<String>)> {
    order_status(&order(v), &Settings::new("DEMO"))
}

fn tag(v: serde_json::Value) -> Option<(&'static str, Option<String>)> {
    status_of(v).map(|(s, t)| (s.as_str(), t))
}

fn sub(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// The ordered stops of the reference's SaveOrder example: pickup 1, destination 2.
fn ordered() -> serde_json::Value {
    json!({"Stop": [
        {"Sequence": "1", "StopType": "P", "Address": "2251 Orange Blossom Trail", "City": "Orlando", "Zip": "32804"},
        {"Sequence": "2", "StopType": "D", "Address": "2253 Orange Blossom Trail", "City": "Orlando", "Zip": "32804"}
    ]})
}

#[test]
fn every_reference_status_code_has_its_class() {
    let a = |s: &str, d: &str| wire::StatusAnswer {
        status: Some(s.into()),
        statusdescription: Some(d.into()),
        user_guid: None,
    };
    assert!(matches!(classify(200, Some(&a("0", "JSON Post Received")), false), Outcome::Ok));
    let kind = |http, s: &str, d: &str, nf| match classify(http, Some(&a(s, d)), nf) {
        Outcome::Failed(e) => e.kind(),
        Outcome::TokenRefused(_) => "token",
        Outcome::Ok => "ok",
    };
    assert_eq!(kind(500, "-1", "An undefined error has occurred", false), "transient");
    assert_eq!(kind(500, "-2", "Unable to parse JSON", false), "protocol");
    assert_eq!(kind(500, "-3", "Unable to Connect to Database", false), "transient");
    assert_eq!(kind(500, "-4", "Order Not Found", false), "rejected");
    assert_eq!(kind(500, "-4", "Order Not Found", true), "not_found");
    assert_eq!(kind(500, "-5", "No UserGUID Received", false), "token");
    assert_eq!(kind(500, "-6", "No config file found", false), "misconfigured");
    assert_eq!(kind(409, "", "Order Unable to Cancel", false), "conflict");
    assert!(matches!(classify(502, None, false), Outcome::Failed(CarrierError::Transient { .. })));
    assert_eq!(kind(503, "-4", "Service Unavailable", false), "transient");
    assert_eq!(kind(500, "-4", "Invalid Service", false), "rejected");
    assert!(matches!(classify(200, Some(&a("", "")), false), Outcome::Failed(CarrierError::Protocol { .. })));
}

#[test]
fn dates_and_money_parse_in_the_reference_formats() {
    let t = parse_datetime("9/3/2020 2:43:00 AM", &utc()).expect("date");
    assert_eq!(t.to_rfc3339(), "2020-09-03T02:43:00+00:00");
    assert_eq!(parse_datetime("12/05/20 11:00", &utc()).expect("date").to_rfc3339(), "2020-12-05T11:00:00+00:00");
    assert!(parse_datetime("12/05/2020 09:00", &utc()).is_some());
    let est = FixedOffset::west_opt(5 * 3600).expect("offset");
    assert_eq!(parse_datetime("11/13/2019 6:00:00 AM", &est).expect("date").to_rfc3339(), "2019-11-13T11:00:00+00:00");
    let m = parse_money("$1,040.00").expect("money");
    assert_eq!((m.amount.as_str(), m.currency.as_str()), ("1040.00", "USD"));
    assert!(parse_money("40.00 EUR").is_none());
    let scheduled = DateTime::parse_from_rfc3339("2019-11-13T18:00:00-05:00").expect("time");
    assert_eq!(format_datetime(&scheduled), "11/13/2019 6:00:00 PM");
    assert_eq!(tz_label(scheduled.offset()), "EST");
}

#[test]
fn countries_are_written_as_the_reference_writes_them() {
    assert_eq!(country_alpha3("US"), Some("USA"));
    assert_eq!(country_alpha3("AD"), Some("AND"), "first entry");
    assert_eq!(country_alpha3("ZW"), Some("ZWE"), "last entry");
    assert_eq!(country_alpha3("DE"), Some("DEU"));
    assert_eq!(country_alpha3("XX"), None);
    assert_eq!(ALPHA3.len(), 249 * 6);
    let pairs: Vec<&str> = ALPHA3.as_bytes().chunks(6).map(|c| std::str::from_utf8(&c[..2]).unwrap_or("")).collect();
    assert!(pairs.windows(2).all(|w| w[0] < w[1]), "sorted for the binary search");
}

#[test]
fn order_status_alone_maps_as_the_contract_says() {
    assert_eq!(tag(json!({"@OrderStatus": "N"})), Some(("info_received", None)));
    assert_eq!(tag(json!({"@OrderStatus": "A"})), Some(("info_received", sub("InfoReceived_001"))));
    assert_eq!(tag(json!({"OrderStatus": "X"})), Some(("exception", sub("Exception_020"))));
    for raw in ["T", "I", "P", "?"] {
        assert_eq!(tag(json!({"@OrderStatus": raw})), None, "{raw}");
    }
}

#[test]
fn a_done_pickup_jobstop_is_in_transit_whatever_the_ordered_stop_says() {
    // Issue 8's defect: the ordered stop holds no progress; the JobStop does.
    let picked = json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": {"Sequence": "1", "JobStops": {
    "JobStop": [
        {"StopType": "P", "Address": "2251 Orange Blossom Trail", "ArriveDateTime": "9/3/2020 2:43:00 AM",
         "DepartDateTime": "9/3/2020 2:50:00 AM"},
        {"StopType": "D", "Address": "2253 Orange Blossom Trail"}
    ]}}}});
    assert_eq!(tag(picked), Some(("in_transit", sub("InTransit_002"))));
    // Each kind of evidence on its own, attributes with or without "@".
    for evidence in [
        json!({"@StopType": "P", "@ArriveDateTime": "9/3/2020 2:43:00 AM"}),
        json!({"StopType": "P", "JobStopStatus": "Completed"}),
        json!({"StopType": "P", "PodName": "DOCK 4"}),
        json!({"JobStopPieces": {"JobStopPiece": {"PieceAction": "P", "PieceActionStatus": "Done"}}}),
        json!({"StopType": "P", "JobStopStatus": "Arrived"}),
    ] {
        let o = json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": {"JobStops": {"JobStop": evidence.clone()}}}});
        assert_eq!(tag(o), Some(("in_transit", sub("InTransit_002"))), "{evidence}");
    }
    // Empty-date placeholders are "not yet".
    let placeholders = json!({"@OrderStatus": "A", "Stops": ordered(), "PodDateTime": "1/1/1900 12:00:00 AM",
        "Jobs": {"Job": {"JobStops": {"JobStop": {"StopType": "P",
        "ArriveDateTime": "1/1/0001 12:00:00 AM", "DepartDateTime": "1/1/1900 12:00:00 AM"}}}}});
    assert_eq!(tag(placeholders), Some(("info_received", sub("InfoReceived_001"))));
    // A pickup piece still to do, an unknown status: no progress.
    let pending = json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": {"JobStops": {"JobStop": {
        "StopType": "P", "JobStopStatus": "Pending",
        "JobStopPieces": {"JobStopPiece": {"PieceAction": "P", "PieceActionStatus": "Open"}}}}}}});
    assert_eq!(tag(pending), Some(("info_received", sub("InfoReceived_001"))));
}

#[test]
fn delivery_needs_every_destination_done_or_the_orders_pod() {
    let job = |stops: serde_json::Value| json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": {"JobStops": {"JobStop": stops}}}});
    let pickup = json!({"StopType": "P", "DepartDateTime": "9/3/2020 2:50:00 AM"});
    let signed = job(json!([pickup, {"StopType": "D", "PodName": "J. DOE", "PodDateTime": "9/3/2020 3:20:00 AM"}]));
    assert_eq!(tag(signed), Some(("delivered", sub("Delivered_003"))));
    let unsigned = job(json!([pickup, {"StopType": "D", "JobStopStatus": "Delivered"}]));
    assert_eq!(tag(unsigned), Some(("delivered", sub("Delivered_001"))));
    let pieces_done = job(json!([pickup, {"StopType": "D", "JobStopPieces": {"JobStopPiece": [
        {"PieceAction": "D", "PieceActionStatus": "done"}, {"PieceAction": "D", "PieceActionStatus": "Done"}]}}]));
    assert_eq!(tag(pieces_done).map(|t| t.0), Some("delivered"));
    let one_piece_left = job(json!([pickup, {"StopType": "D", "JobStopPieces": {"JobStopPiece": [
        {"PieceAction": "D", "PieceActionStatus": "Done"}, {"PieceAction": "D"}]}}]));
    assert_eq!(tag(one_piece_left).map(|t| t.0), Some("in_transit"));
    let at_the_door = job(json!([pickup, {"StopType": "D", "ArriveDateTime": "9/3/2020 3:10:00 AM"}]));
    assert_eq!(tag(at_the_door), Some(("out_for_delivery", None)));
    let order_pod = json!({"@OrderStatus": "A", "PodName": "J. DOE", "PodDateTime": "9/3/2020 3:20:00 AM"});
    assert_eq!(tag(order_pod), Some(("delivered", sub("Delivered_003"))));
    let signature_only = json!({"@OrderStatus": "A", "PodSign": "iVBORw0KGgo="});
    assert_eq!(tag(signature_only), Some(("delivered", sub("Delivered_003"))));
}

#[test]
fn jobstops_are_matched_to_the_ordered_stops_as_the_data_allows() {
    // Two destinations: one POD is not the order delivered.
    let stops = json!({"Stop": [
        {"Sequence": "1", "StopType": "P", "@StopID": "10"},
        {"Sequence": "2", "StopType": "D", "@StopID": "11"},
        {"Sequence": "3", "StopType": "D", "@StopID": "12"}]});
    let one_of_two = json!({"@OrderStatus": "A", "Stops": stops.clone(), "Jobs": {"Job": {"JobStops": {"JobStop": [
        {"StopID": "10", "DepartDateTime": "9/3/2020 2:50:00 AM"},
        {"StopID": "11", "PodName": "A"}, {"StopID": "12"}]}}}});
    assert_eq!(tag(one_of_two).map(|t| t.0), Some("in_transit"));
    let both = json!({"@OrderStatus": "A", "Stops": stops, "Jobs": {"Job": {"JobStops": {"JobStop": [
        {"StopID": "11", "PodName": "A"}, {"Sequence": "3", "StopType": "D", "PodDateTime": "9/3/2020 4:00:00 AM"}]}}}});
    assert_eq!(tag(both), Some(("delivered", sub("Delivered_003"))));

    // A transfer: driver 1 delivers to a hub that was never ordered, driver 2 has not
    // delivered yet. The hub's POD is progress, not the delivery.
    let transfer = json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": [
        {"Sequence": "1", "JobStops": {"JobStop": [
            {"StopType": "P", "Address": "2251 Orange Blossom Trail", "DepartDateTime": "9/3/2020 2:50:00 AM"},
            {"StopType": "D", "Address": "1 Hub Road", "City": "Orlando", "PodName": "HUB"}]}},
        {"Sequence": "2", "JobStops": {"JobStop": [
            {"StopType": "P", "Address": "1 Hub Road", "City": "Orlando"},
            {"StopType": "D", "Address": "2253 ORANGE BLOSSOM TRAIL", "City": "Orlando"}]}}]}});
    assert_eq!(tag(transfer.clone()).map(|t| t.0), Some("in_transit"));
    let mut done = transfer;
    done["Jobs"]["Job"][1]["JobStops"]["JobStop"][1]["PodName"] = json!("J. DOE");
    assert_eq!(tag(done), Some(("delivered", sub("Delivered_003"))), "the ordered destination, case aside");

    // No ordered stops in the answer: every delivering JobStop must be done.
    let bare = json!({"@OrderStatus": "A", "Jobs": {"Job": {"JobStops": {"JobStop": [
        {"JobStopPieces": {"JobStopPiece": {"PieceAction": "D", "PieceActionStatus": "Delivered"}}}]}}}});
    assert_eq!(tag(bare).map(|t| t.0), Some("delivered"));
}

#[test]
fn events_count_as_evidence_and_undocumented_codes_move_only_on_evidence() {
    let events = |t: &str| json!({"OrderEvent": [{"EventType": "Assigned"}, {"@EventType": t}]});
    assert_eq!(tag(json!({"@OrderStatus": "A", "OrderEvents": events("Pickup")})).map(|t| t.0), Some("in_transit"));
    assert_eq!(
        tag(json!({"@OrderStatus": "A", "OrderEvents": events("POD")})),
        Some(("delivered", sub("Delivered_001")))
    );
    assert_eq!(tag(json!({"@OrderStatus": "I"})), None);
    let i_with_pickup = json!({"@OrderStatus": "I", "Jobs": {"Job": {"JobStops": {"JobStop": {"StopType": "P", "DepartDateTime": "9/3/2020 2:50:00 AM"}}}}});
    assert_eq!(tag(i_with_pickup).map(|t| t.0), Some("in_transit"));
    let template = json!({"@OrderStatus": "T", "PodName": "X"});
    assert_eq!(tag(template), None, "a template is no shipment");
    let deleted = json!({"@OrderStatus": "X", "Jobs": {"Job": {"JobStops": {"JobStop": {"StopType": "P", "DepartDateTime": "9/3/2020 2:50:00 AM"}}}}});
    assert_eq!(tag(deleted).map(|t| t.0), Some("exception"));
}

#[test]
fn a_sites_own_done_codes_come_from_the_connection() {
    let o = order(
        json!({"@OrderStatus": "A", "Stops": ordered(), "Jobs": {"Job": {"JobStops": {"JobStop": {"StopType": "P", "JobStopStatus": "C"}}}}}),
    );
    let plain = Settings::new("DEMO");
    assert_eq!(order_status(&o, &plain).map(|s| s.0), Some(Status::InfoReceived), "\"C\" is ambiguous by default");
    let site = Settings { completed_statuses: vec![norm(" c ")], ..Settings::new("DEMO") };
    assert_eq!(order_status(&o, &site).map(|s| s.0), Some(Status::InTransit));
}

#[test]
fn events_become_tracking_events_with_stable_keys_and_their_actor() {
    let o = order(json!({"@OrderStatus": "A", "OrderEvents": {"OrderEvent": [
        {"@OrderEventID": "7", "@EventType": "Picked Up", "@EventDateTime": "9/3/2020 2:43:00 AM", "@UserName": "D101"},
        {"@EventType": "Weird Thing", "@EventDateTime": "9/3/2020 3:00:00 AM"},
        {"@EventType": "No Time"}]}}));
    let snap = snapshot_from(&o, &Settings::new("DEMO"));
    assert_eq!(snap.events.len(), 2, "an event without a time cannot be placed");
    assert_eq!(snap.events[0].dedup_key, "ecourier:7");
    assert_eq!(snap.events[0].status, Some(Status::InTransit));
    assert_eq!(snap.events[0].actor.as_deref(), Some("D101"));
    assert_eq!(snap.events[1].status, None);
    assert_eq!(snap.events[1].raw_code.as_deref(), Some("Weird Thing"));
    assert_eq!(snap.events[1].dedup_key, "ecourier:Weird Thing|9/3/2020 3:00:00 AM");
    assert_eq!(snap.carrier_status.as_deref(), Some("A"));
}
