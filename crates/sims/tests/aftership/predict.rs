//! Estimated delivery dates: predict-batch with 2024-04 addresses.

use super::*;

fn edd_item() -> Value {
    json!({
        "slug": "ecms",
        "origin_address": {"country": "CHN", "state": "Guangdong", "city": "Shenzhen"},
        "destination_address": {"country": "USA", "postal_code": "10001"},
        "pickup_time": "2024-05-01 15:00:00"
    })
}

#[tokio::test]
async fn predict_batch_speaks_2024_04_addresses() {
    let api = api().await;
    let path = "/estimated-delivery-date/predict-batch";
    let a = api.call(Method::POST, path, Some(json!({"estimated_delivery_dates": [edd_item(), edd_item()]}))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let p = &a.body["data"]["estimated_delivery_dates"][0];
    assert_eq!(Answer::keys(p).len(), 12, "EstimatedDeliveryDateResponse has 12 fields");
    assert_eq!(
        (p["estimated_delivery_date"].as_str(), p["origin_address"]["country"].as_str()),
        (Some("2024-05-07"), Some("CHN"))
    );
    let refused = |body: Value| {
        let api = &api;
        async move { api.call(Method::POST, path, Some(body)).await }
    };
    // country_region is 2025-01.
    let mut item = edd_item();
    item["origin_address"] = json!({"country_region": "CHN", "state": "Guangdong"});
    let a = refused(json!({"estimated_delivery_dates": [item]})).await;
    assert_error(&a, 400, 400, "BadRequest");
    assert!(a.body["meta"]["message"].as_str().unwrap().contains("country_region"));
    assert_error(&refused(json!({"estimated_delivery_dates": []})).await, 400, 4008, "BadRequest");
    assert_error(&refused(json!({"estimated_delivery_dates": vec![edd_item(); 6]})).await, 400, 4008, "BadRequest");
    assert_error(&refused(json!({})).await, 400, 4009, "BadRequest");
    let mut item = edd_item();
    item.as_object_mut().unwrap().remove("pickup_time");
    assert_error(&refused(json!({"estimated_delivery_dates": [item]})).await, 400, 4009, "BadRequest");
    let mut item = edd_item();
    item["destination_address"] = json!({"country": "US", "postal_code": "10001"});
    assert_error(&refused(json!({"estimated_delivery_dates": [item]})).await, 400, 4008, "BadRequest");
    let mut item = edd_item();
    item["destination_address"] = json!({"country": "USA", "city": "New York"});
    assert_error(&refused(json!({"estimated_delivery_dates": [item]})).await, 400, 4009, "BadRequest");
    let mut item = edd_item();
    item["pickup_time"] = json!("2024-05-01T15:00:00Z");
    assert_error(&refused(json!({"estimated_delivery_dates": [item]})).await, 400, 4008, "BadRequest");
}
