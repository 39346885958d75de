//! SaveOrder, validated like a create every time; cancel as a complete order.

use super::*;

// ---- SaveOrder: validated like a create, every time

/// A change made to a complete order.
type Edit = fn(&mut Value);

/// Posts `body` to SaveOrder and returns the -4 description.
async fn refused(h: &Harness, body: &Value) -> String {
    let (status, code, text) = h.call("SaveOrder", Some(REFERENCE_GUID), body).await.error();
    assert_eq!((status, code.as_str()), (500, "-4"), "{text}");
    text
}

#[tokio::test]
async fn partial_orders_and_missing_elements_are_refused() {
    let h = start(config()).await;
    assert_eq!(h.call("SaveOrder", Some(REFERENCE_GUID), &order("P-1")).await.status, 200);
    // The partial cancel the reference does not define.
    let partial = json!({"Order": {"CustomerCode": "Alpha", "OrderNumber": "P-1", "OrderStatus": "X"}});
    assert!(refused(&h, &partial).await.contains("Order/Stops is required"));
    assert_eq!(h.sim.order("P-1").unwrap()["Order"]["@OrderStatus"], "N", "nothing changed");

    let cases: Vec<(Edit, &str)> = vec![
        (|o| o["Order"]["Stops"]["Stop"] = o["Order"]["Stops"]["Stop"][0].clone(), "no destination stop"),
        (|o| o["Order"]["Stops"]["Stop"] = o["Order"]["Stops"]["Stop"][1].clone(), "no pickup stop"),
        (|o| o["Order"]["Stops"] = json!({}), "Order/Stops is required"),
        (
            |o| o["Order"]["Stops"]["Stop"][0].as_object_mut().unwrap().retain(|k, _| k != "Sequence"),
            "Order/Stops/Stop[1]/Sequence is required",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1].as_object_mut().unwrap().retain(|k, _| k != "StopType"),
            "Order/Stops/Stop[2]/StopType is required",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["StopType"] = json!("X"),
            "Order/Stops/Stop[2]/StopType 'X' is not one of P, D, B",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["Sequence"] = json!("1"),
            "Order/Stops/Stop[2]/Sequence 1 is used by another stop",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][1]["OrderStopPieces"]["OrderStopPiece"]["Sequence"] = json!("7"),
            "Sequence 7 matches no Order/Pieces/Piece",
        ),
        (
            |o| o["Order"]["Stops"]["Stop"][0]["OrderStopPieces"]["OrderStopPiece"]["PieceAction"] = json!("B"),
            "PieceAction 'B' is not one of P, D",
        ),
        (
            |o| o["Order"]["CustomerCode"] = json!("Beta"),
            "Order/CustomerCode 'Beta' is not a customer of this UserGUID",
        ),
        (|o| o["Order"]["OrderID"] = json!("9"), "Order/OrderID may not be set via API"),
        (|o| o["Order"]["SiteID"] = json!("1"), "Order/SiteID may not be set via API"),
        (|o| o["Order"]["SiteCode"] = json!("Corporate"), "Order/SiteCode may not be set via API"),
        (|o| o["Order"]["TransferID"] = json!("3"), "Order/TransferID may not be set via API"),
        (|o| o["Order"]["Jobs"] = json!({"Job": {"Sequence": "1"}}), "Order/Jobs may only be set by e-Courier"),
        (|o| o["Order"]["OrderEvents"] = json!({"OrderEvent": []}), "Order/OrderEvents may only be set by e-Courier"),
        (|o| o["Order"]["Colour"] = json!("red"), "Order/Colour is not a field of the e-Courier order model"),
        (|o| o["Order"]["Pieces"]["Piece"][0]["Length"] = json!("3"), "Order/Pieces/Piece[1]/Length is not a field"),
        (
            |o| o["Order"]["Stops"]["Stop"][0]["Sequence"] = json!(1),
            "Order/Stops/Stop[1]/Sequence must be a JSON string",
        ),
        (|o| o["Order"]["Stops"]["Stop"][0]["ScheduledDateTime"] = json!("13/11/2019 6:00"), "is not a date and time"),
        (|o| o["Order"]["Weight"] = json!("heavy"), "Order/Weight 'heavy' is not a number"),
        (|o| o["Order"]["PodRequired"] = json!("yes"), "Order/PodRequired 'yes' is not a boolean"),
        (|o| o["Order"]["OrderStatus"] = json!("A"), "Order/OrderStatus 'A' is set by e-Courier's dispatch"),
        (|o| o["Order"]["Service"] = json!({"x": "1"}), "Order/Service must be a JSON string"),
        (|o| o["Order"]["Stops"] = json!([{"Stop": {}}]), "Order/Stops must be an element holding Stop"),
        (|o| o["Order"]["@Service"] = json!("Route"), "Order/Service is given twice"),
        (|o| *o = json!({"Orders": o["Order"].clone()}), "Order element is missing"),
    ];
    for (change, expected) in cases {
        let mut body = order("P-2");
        change(&mut body);
        let text = refused(&h, &body).await;
        assert!(text.contains(expected), "expected '{expected}' in '{text}'");
    }
    assert_eq!(h.sim.order_count(), 1);
    // Several problems are all named.
    let mut body = order("P-2");
    body["Order"]["OrderID"] = json!("1");
    body["Order"]["Colour"] = json!("red");
    let text = refused(&h, &body).await;
    assert!(text.contains("OrderID") && text.contains("Colour"), "{text}");
}

#[tokio::test]
async fn every_field_of_the_reference_lists_is_accepted_and_returned() {
    let h = start(config()).await;
    let body: Value = serde_json::from_str(
        r#"{"Order": {
        "OrderNumber": "F-1", "OrderStatus": "N", "OrderAlias": "alias", "CustomerID": "65", "Notes": "n",
        "CustomerCode": "Alpha", "CreateDate": "11/12/2019", "CreateUserID": "4", "OrderDate": "11/13/2019",
        "Service": "Route", "VehicleTypeID": "2", "VehicleType": "Van", "@Pieces": "6", "Weight": "12.5",
        "PodRequired": "true", "PodSendType": "1", "AmountQuote": "40.00", "Caller": "Ann", "CallerPhone": "3015551212",
        "AmountCharged": "40", "AmountReceived": "0", "QualityFlag": "0", "AutoVerify": "1", "UserName": "ann",
        "PackageType": "Box", "CarrierTypeID": "1", "PriorityGroup": "A", "TotalMiles": "3.2", "HolidayNameID": "1",
        "IncludeHolidayNameID": "1", "DueTimeHolidayNameID": "1", "FeeMisc1": "false", "FeeMisc2": "false",
        "FeeMisc3": "false", "FeeMisc4": "false", "Description": "d", "OtherReference": "ref", "InvoiceReference": "inv",
        "Auth": "1234779", "PodName": "", "PodDateTime": "", "PodSign": "", "CodAmount": "0", "DeclaredValue": "99.90",
        "CallerEmail": "a@example.com", "TaskID": "1", "CompleteOrder": "1", "ReadyDateTime": "12/05/2020 09:00",
        "DueDateTime": "12/05/20 11:00", "DriverCode": "",
        "Pieces": {"Piece": {"Sequence": "1", "Reference": "r", "Pieces": "6", "Weight": "2.5", "Height": "1",
            "Width": "2", "Description": "box"}},
        "Stops": {"Stop": [
            {"Sequence": "1", "StopType": "P", "ScheduledDateTime": "2019-11-13T06:00:00", "EarlyDateTime": "11/13/2019 5:00 AM",
             "LateDateTime": "11/13/2019 7:00:00 AM", "TimeOfServiceCode": "AM", "Zone": "1", "DispatchZone": "N",
             "Name": "James Madison", "Address": "2251 Orange Blossom Trail", "City": "Orlando", "State": "FL",
             "Zip": "32804", "Country": "USA", "Phone": "3015551212", "See": "James", "Room": "2", "Note": "dock",
             "CustomerShipToCode": "S1", "LocationTypeID": "1", "DispatchGroupID": "2", "StopMiles": "0",
             "ZLatitude": "28.5", "ZLongitude": "-81.4", "Latitude": "28.55", "Longitude": "-81.41", "StopID": "501",
             "AVSQuality": "9", "ScheduledDateTimeTZ": "EST", "Pieces": "6", "Weight": "15", "Service": "Route",
             "Description": "pickup", "ContractNumber": "C1", "RouteNumber": "R1", "Frequency": "D", "DriverPay": "5",
             "AmountCharged": "20", "StopClassID": "1", "DriverCode": "",
             "OrderStopPieces": {"OrderStopPiece": {"PieceAction": "P", "Sequence": "1"}}},
            {"@Sequence": "2", "@StopType": "D", "Name": "Bryan Moore", "See": "Bryan",
             "OrderStopPieces": {"OrderStopPiece": {"PieceAction": "D", "Sequence": "1"}}}
        ]},
        "OrderFees": {"OrderFee": {"Sequence": "1", "SubSequence": "1", "FeeAmount": "4.5", "FeeValue": "fuel",
            "OverrideFlag": "false", "Notes": "", "FeeTitle": "Fuel", "FeeCode": "FS"}},
        "OrderNotifiers": {"OrderNotify": {"Sequence": "1", "OrderNotifyID": "10", "NotifyEmail": "a@example.com",
            "FromEmail": "", "Subject": "Delivered $OrderNumber", "StyleSheetID": "3", "CustomerNotifyID": "1"}},
        "Customer": {"CustomerID": "65", "CustomerCode": "Alpha", "Name": "Alpha Inc", "Address": "1 Main St",
            "City": "Orlando", "State": "FL", "Zip": "32801", "Country": "USA", "Phone": "3015550000", "See": "",
            "PState": "FL", "PCountry": "USA", "Notes": "", "Service": "Route", "VehicleTypeID": "1",
            "CreatedDate": "1/2/2015", "ReferencePrompt": "PO", "SiteID": "1", "CustomerTypeID": "1", "SiteCode": "",
            "OkCreditStatus": "1"}
    }}"#,
    )
    .expect("JSON");
    let a = h.call("SaveOrder", Some(REFERENCE_GUID), &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let o = h.sim.order("F-1").unwrap()["Order"].clone();
    assert_all_strings(&o, "Order");
    assert_eq!(o["@DeclaredValue"], "99.90");
    assert_eq!(o["@Pieces"], "6", "the Pieces attribute beside the Pieces element");
    assert!(o.get("@PodName").is_none(), "empty means not set");
    assert_eq!(o["Stops"]["Stop"][0]["@StopID"], "501");
    assert_eq!(o["Stops"]["Stop"][1]["@StopType"], "D", "@-prefixed attributes are read too");
    assert_eq!(o["OrderFees"]["OrderFee"]["@FeeCode"], "FS");
    assert_eq!(o["OrderNotifiers"]["OrderNotify"]["@OrderNotifyID"], "10");
    assert_eq!(o["Customer"]["@Name"], "Alpha Inc");
    // OrderNotify's NotifyDateTime is use="prohibited".
    let mut bad = body.clone();
    bad["Order"]["OrderNotifiers"]["OrderNotify"]["NotifyDateTime"] = json!("1/1/2020");
    assert!(refused(&h, &bad).await.contains("NotifyDateTime may not be set"));
}

#[tokio::test]
async fn saveorder_replaces_the_whole_order_and_keeps_its_history() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let mut first = order("U-1");
    first["Order"]["Notes"] = json!("ring twice");
    first["Order"]["Description"] = json!("documents");
    assert_eq!(h.call("SaveOrder", Some(guid), &first).await.status, 200);
    let created = h.sim.order("U-1").unwrap()["Order"].clone();
    let mut second = order("U-1");
    second["Order"]["Notes"] = json!("ring once");
    assert_eq!(h.call("SaveOrder", Some(guid), &second).await.status, 200);
    let o = h.sim.order("U-1").unwrap()["Order"].clone();
    assert_eq!(o["@Notes"], "ring once");
    assert!(o.get("@Description").is_none(), "what the update leaves out is gone: the whole order is replaced");
    assert_eq!(o["@OrderID"], created["@OrderID"]);
    assert_eq!(o["@CreateDate"], created["@CreateDate"]);
    let events = many(&o["OrderEvents"]["OrderEvent"]);
    let types: Vec<&str> = events.iter().map(|e| e["@EventType"].as_str().unwrap()).collect();
    assert_eq!(types, ["Create", "Modify"]);
    assert_eq!(h.sim.order_count(), 1);
    // Another customer can neither see nor take the order number.
    let other = h.login("user2", "pass2").await;
    let a = h.call("GetJsonOrder", Some(&other), &json!({"OrderNumber": "U-1"})).await;
    assert_eq!(a.error(), (500, "-4".into(), "Order Not Found".into()));
    let mut theirs = order("U-1");
    theirs["Order"]["CustomerCode"] = json!("Beta");
    let (_, code, text) = h.call("SaveOrder", Some(&other), &theirs).await.error();
    assert_eq!(code, "-4");
    assert!(text.contains("belongs to another customer"), "{text}");
}

#[tokio::test]
async fn cancel_is_a_complete_order_with_status_x() {
    let h = start(config()).await;
    let guid = REFERENCE_GUID;
    let mut cancel = order("X-1");
    cancel["Order"]["OrderStatus"] = json!("X");
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.error(), (500, "-4".into(), "Order Not Found".into()));
    assert_eq!(h.call("SaveOrder", Some(guid), &order("X-1")).await.status, 200);
    h.sim.advance("X-1").unwrap();
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.status, 200, "an assigned order can still be cancelled");
    let o = h.get_order(guid, "X-1").await["Order"].clone();
    assert_eq!(o["@OrderStatus"], "X");
    let last = many(&o["OrderEvents"]["OrderEvent"]).pop().unwrap();
    assert_eq!(last["@Note"], "Status changed from A to X");
    assert_eq!(h.call("SaveOrder", Some(guid), &cancel).await.status, 200, "cancelling again is a no-op");
    let a = h.call("SaveOrder", Some(guid), &order("X-1")).await;
    assert_eq!(a.error(), (409, "-4".into(), "Order Unable to Modify".into()), "a deleted order stays deleted");
    assert!(h.sim.advance("X-1").is_err());
}
