//! The Ecom Express pusher (seed 003) against the seed's own payload and acknowledgements,
//! and against a tiny receiver that checks Basic Auth and acknowledges as the seed shows.

use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use chrono::{FixedOffset, TimeZone, Utc};
use serde_json::{Value, json};
use sims::ecomexpress::{Ack, EcomPusher, Scan};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contract/fixtures/ecomexpress").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn seed_scan() -> Scan {
    Scan::new("AWB_NUMBER", "44591782", "777")
        .at(Utc.with_ymd_and_hms(2024, 5, 28, 1, 35, 9).unwrap())
        .status("remark")
        .reason_code("777 - RTS - Return To Shipper")
        .location("JRD")
        .employee("Name of Employee")
        .order_number("ORDER_NUMBER")
        .city("Vadodara")
}

#[test]
fn the_body_has_the_seed_payloads_keys_all_strings_and_india_time() {
    let seed = fixture("push.request.json");
    let body = seed_scan().body();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&body), keys(&seed));
    assert!(body.as_object().unwrap().values().all(Value::is_string), "{body}");
    // Every value but the datetime placeholder is the seed's own.
    let mut expected = seed.clone();
    expected["datetime"] = json!("2024-05-28 07:05:09");
    assert_eq!(body, expected);

    let ist = FixedOffset::east_opt(19_800).unwrap();
    let evening = Scan::new("A1", "1", "999").at(ist.with_ymd_and_hms(2024, 12, 31, 23, 59, 59).unwrap());
    assert_eq!(evening.body()["datetime"], "2024-12-31 23:59:59");
    let bare = Scan::new("A2", "2", "001").body();
    assert_eq!((bare["ref_awb"].clone(), bare["Employee"].clone()), (json!(""), json!("")));
}

#[test]
fn extra_fields_of_public_receivers_are_strings_too() {
    let body = Scan::new("A3", "3", "999")
        .extra("child_reason_code_number", "999")
        .extra("received_by", "Self")
        .extra("EDD", "2024-06-01")
        .body();
    assert_eq!(body["child_reason_code_number"], "999");
    assert_eq!(body["received_by"], "Self");
    assert_eq!(body["EDD"], "2024-06-01");
    assert_eq!(body.as_object().unwrap().len(), 14);
}

#[test]
fn both_seed_acknowledgements_parse() {
    let success = fixture("push.ack-success.json").to_string();
    let ack = Ack::parse(200, &success, "AWB_NUMBER", "1898982");
    assert_eq!(
        (ack.status(), ack.awb().as_deref(), ack.status_update_number().as_deref()),
        (Some(true), Some("AWB_NUMBER"), Some("1898982"))
    );
    assert!(ack.accepted(), "the seed echoes the number as a number; the text is what counts");
    assert!(!Ack::parse(200, &success, "AWB_NUMBER", "44591782").accepted(), "an echo of another scan");
    assert!(!Ack::parse(200, &success, "OTHER", "1898982").accepted(), "an echo of another awb");
    assert!(!Ack::parse(500, &success, "AWB_NUMBER", "1898982").accepted(), "only a 2xx accepts");

    let failure = fixture("push.ack-failure.json").to_string();
    let ack = Ack::parse(200, &failure, "AWB_NUMBER", "1898982");
    assert_eq!((ack.status(), ack.reason().as_deref()), (Some(false), Some("Reason")));
    assert!(!ack.accepted());
    let html = Ack::parse(200, "<html>ok</html>", "AWB_NUMBER", "1898982");
    assert_eq!((html.body.clone(), html.accepted()), (Value::Null, false));
}

/// A receiver as the seed asks customers to build: Basic Auth, one scan per POST, ack echo.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Value)>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/ecom/push",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let tx = tx.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                tx.send((auth.clone(), body.clone())).unwrap();
                let ok = auth.as_deref().and_then(|a| a.strip_prefix("Basic ")).and_then(|b| {
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                }) == Some(b"ecom-staging:s3cret".to_vec());
                let sun: i64 = body["status_update_number"].as_str().unwrap_or("0").parse().unwrap_or(0);
                if ok {
                    (StatusCode::OK, Json(json!({"awb": body["awb"], "status": true, "status_update_number": sun})))
                } else {
                    let ack = json!({"awb": body["awb"], "status": false, "reason": "Unauthorized", "status_update_number": sun});
                    (StatusCode::UNAUTHORIZED, Json(ack))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ecom/push"), rx)
}

#[tokio::test]
async fn the_pusher_posts_with_basic_auth_and_reads_the_ack() {
    let (url, mut seen) = receiver().await;
    let pusher = EcomPusher::new(&url, "ecom-staging", "s3cret");
    let scan = seed_scan();
    let ack = pusher.push(&scan).await.unwrap();
    assert_eq!(ack.http_status, 200);
    assert!(ack.accepted(), "{ack:?}");
    let (auth, body) = seen.recv().await.unwrap();
    assert_eq!(auth.as_deref(), Some("Basic ZWNvbS1zdGFnaW5nOnMzY3JldA=="));
    assert_eq!(body, scan.body());
    assert!(!format!("{pusher:?}").contains("s3cret"), "the password never prints");

    let wrong = EcomPusher::new(&url, "ecom-staging", "guess");
    let ack = wrong.push(&scan).await.unwrap();
    assert_eq!((ack.http_status, ack.status(), ack.reason().as_deref()), (401, Some(false), Some("Unauthorized")));
    assert!(!ack.accepted());
    assert_eq!(seen.recv().await.unwrap().0.as_deref(), Some("Basic ZWNvbS1zdGFnaW5nOmd1ZXNz"));

    let odd = json!({"awb": "X1", "status_update_number": "77", "datetime": "yesterday"});
    let ack = pusher.push_body(&odd).await.unwrap();
    assert_eq!((ack.pushed_awb.as_str(), ack.pushed_status_update_number.as_str()), ("X1", "77"));
    assert!(ack.accepted());
    assert_eq!(
        seen.recv().await.unwrap().1,
        json!({"awb": "X1", "status_update_number": "77", "datetime": "yesterday"})
    );
}

#[tokio::test]
async fn no_receiver_is_an_error_not_an_ack() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/push", listener.local_addr().unwrap());
    drop(listener);
    assert!(EcomPusher::new(url, "u", "p").push(&Scan::new("A", "1", "001")).await.is_err());
}
