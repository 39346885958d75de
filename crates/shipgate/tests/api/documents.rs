//! Proof of delivery and documents (issue 12): e-Courier's POD and its base64 signature
//! arrive through a refresh, the signature downloads byte for byte, a repeated poll
//! stores nothing new, a file that claims to be a PNG and is not is never stored, and
//! documents are the tenant's own.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_tenant, spawn_app};

/// Book, then advance the simulated order to delivered (assigned, picked up, delivered).
async fn delivered(app: &TestApp, reference: &str) -> (String, String) {
    let s = app.book(reference).await;
    let id = s["id"].as_str().expect("id").to_owned();
    let number = s["carrier_reference"].as_str().expect("number").to_owned();
    for _ in 0..3 {
        app.sim.advance(&number).expect("advance");
    }
    (id, number)
}

/// The signature bytes the carrier sends: its `PodSign`, base64-decoded by the test.
fn carrier_signature(app: &TestApp, number: &str) -> Vec<u8> {
    let order = app.sim.order(number).expect("order");
    let text = order["Order"]["@PodSign"].as_str().expect("PodSign once delivered");
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}

async fn refresh(app: &TestApp, id: &str) -> Value {
    let r = app.post(&format!("/v1/shipments/{id}/refresh"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

async fn count_documents(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM shipment_documents").fetch_one(&app.db).await.expect("count")
}

#[tokio::test]
async fn a_signed_pod_arrives_through_a_refresh_and_downloads_byte_for_byte() {
    let app = spawn_app().await;
    let (id, number) = delivered(&app, "POD-1").await;
    let sent = carrier_signature(&app, &number);
    assert!(sent.starts_with(b"\x89PNG\r\n\x1a\n"), "the simulator renders a PNG");

    let s = refresh(&app, &id).await;
    assert_eq!(s["status"], "delivered");
    let pod = &s["proof_of_delivery"];
    let order = app.sim.order(&number).expect("order");
    assert_eq!(pod["name"], order["Order"]["@PodName"], "{pod}");
    assert!(pod["at"].is_string(), "{pod}");
    let sig = &pod["signature"];
    assert_eq!(sig["content_type"], "image/png");
    assert_eq!(sig["size"], sent.len());
    let doc_id = sig["document_id"].as_str().expect("document_id");

    // Listed with the shipment's documents, and downloadable byte for byte.
    let list = app.get(&format!("/v1/shipments/{id}/documents")).await.json();
    let docs = list["data"].as_array().expect("data");
    assert_eq!(docs.len(), 1, "{list}");
    assert_eq!((docs[0]["id"].as_str(), docs[0]["kind"].as_str()), (Some(doc_id), Some("signature")));
    assert_eq!(docs[0]["stored"], true);
    let url = docs[0]["url"].as_str().expect("url");
    let got = app.get(url).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(got.bytes, sent, "the bytes the carrier sent");

    // The status_changed event carries the proof, without the image.
    let events = app.get(&format!("/v1/events?shipment_id={id}&type=shipment.status_changed&limit=100")).await;
    let events = events.json();
    let last = events["data"].as_array().and_then(|a| a.last()).expect("a status_changed event");
    assert_eq!(last["data"]["shipment"]["status"], "delivered");
    assert_eq!(last["data"]["shipment"]["proof_of_delivery"], *pod);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&sent);
    assert!(!last.to_string().contains(&b64[..40]), "no image bytes in the event");
    // Nor in the exchange log: the signature is personal data.
    let log = app.get(&format!("/v1/shipments/{id}/exchanges")).await;
    assert!(!String::from_utf8_lossy(&log.bytes).contains(&b64[..40]));

    // Every later poll repeats the signature: nothing new is stored or recorded.
    let history_before = app.get(&format!("/v1/shipments/{id}/history")).await.json()["data"].as_array().map(Vec::len);
    for _ in 0..3 {
        let again = refresh(&app, &id).await;
        assert_eq!(again["proof_of_delivery"], *pod);
    }
    assert_eq!(count_documents(&app).await, 1);
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    assert_eq!(history["data"].as_array().map(Vec::len), history_before, "{history}");
    let actions: Vec<&str> =
        history["data"].as_array().expect("data").iter().filter_map(|h| h["action"].as_str()).collect();
    assert!(actions.contains(&"document_stored") && actions.contains(&"proof_of_delivery"), "{actions:?}");
}

#[tokio::test]
async fn a_declared_png_that_is_not_a_png_is_not_stored() {
    let app = spawn_app().await;
    let (id, number) = delivered(&app, "POD-2").await;
    // A data URI that says PNG around text, and bare bytes with a PNG signature and no PNG after it.
    let fake = base64::engine::general_purpose::STANDARD.encode(b"<html>not a signature</html>");
    app.sim.set_pod_sign(&number, Some(format!("data:image/png;base64,{fake}"))).expect("knob");
    let s = refresh(&app, &id).await;
    assert_eq!(s["status"], "delivered", "the delivery itself is still recorded");
    assert!(s["proof_of_delivery"]["name"].is_string());
    assert!(s["proof_of_delivery"].get("signature").is_none_or(Value::is_null), "{s}");
    let mut png_head = b"\x89PNG\r\n\x1a\n".to_vec();
    png_head.extend_from_slice(&[0; 40]);
    app.sim.set_pod_sign(&number, Some(base64::engine::general_purpose::STANDARD.encode(&png_head))).expect("knob");
    refresh(&app, &id).await;
    assert_eq!(count_documents(&app).await, 0);
    let docs = app.get(&format!("/v1/shipments/{id}/documents")).await.json();
    assert_eq!(docs["data"].as_array().map(Vec::len), Some(0), "{docs}");
    let history = app.get(&format!("/v1/shipments/{id}/history")).await.json();
    let refused: Vec<&Value> =
        history["data"].as_array().expect("data").iter().filter(|h| h["action"] == "document_refused").collect();
    assert!(!refused.is_empty(), "{history}");
    assert!(refused[0]["detail"]["reason"].as_str().is_some_and(|r| r.contains("image/png")), "{refused:?}");

    // The real signature afterwards is stored.
    app.sim.set_pod_sign(&number, None).expect("knob");
    let s = refresh(&app, &id).await;
    assert_eq!(s["proof_of_delivery"]["signature"]["content_type"], "image/png");
    assert_eq!(count_documents(&app).await, 1);
}

#[tokio::test]
async fn documents_are_the_tenants_own() {
    let app = spawn_app().await;
    let (id, _) = delivered(&app, "POD-3").await;
    let s = refresh(&app, &id).await;
    let doc = s["proof_of_delivery"]["signature"]["document_id"].as_str().expect("document").to_owned();
    let (_, b_key) = new_tenant(&app.state, "Tenant B").await;
    for path in [format!("/v1/shipments/{id}/documents"), format!("/v1/shipments/{id}/documents/{doc}")] {
        let r = app.request("GET", &path, Some(&b_key), None, &[]).await;
        r.problem(404, "not_found");
    }
    // A's document under another of A's shipments is not found either.
    let other = app.book("POD-4").await;
    let oid = other["id"].as_str().expect("id");
    app.get(&format!("/v1/shipments/{oid}/documents/{doc}")).await.problem(404, "not_found");
    app.get(&format!("/v1/shipments/{id}/documents/doc_nonsense")).await.problem(404, "not_found");
    assert_eq!(app.get(&format!("/v1/shipments/{id}/documents/{doc}")).await.status, 200);
}

#[test]
fn openapi_documents_the_routes_and_the_binary_answer() {
    let doc: Value = serde_json::from_str(&shipgate::http::openapi().to_json().expect("json")).expect("value");
    let list = &doc["paths"]["/v1/shipments/{id}/documents"]["get"]["responses"]["200"]["content"];
    assert_eq!(list["application/json"]["schema"]["$ref"], "#/components/schemas/DocumentList");
    let item = &doc["components"]["schemas"]["DocumentOut"]["properties"];
    for field in ["id", "kind", "stored", "content_type", "size", "url"] {
        assert!(item[field].is_object(), "DocumentOut.{field}");
    }
    let bytes = &doc["paths"]["/v1/shipments/{id}/documents/{document_id}"]["get"]["responses"]["200"]["content"];
    for media in ["image/png", "image/jpeg", "application/pdf", "application/octet-stream"] {
        assert!(bytes[media].is_object(), "{media} in {bytes}");
    }
    assert!(bytes.get("application/json").is_none(), "the bytes are not JSON");
    let shipment = &doc["components"]["schemas"]["ShipmentOut"]["properties"]["proof_of_delivery"];
    assert!(!shipment.is_null(), "ShipmentOut.proof_of_delivery");
}
