//! Health, metrics, carriers, Swagger UI and the committed OpenAPI document.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let r = app.request("GET", "/healthz", None, None, &[]).await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("ok")));
    assert!(r.header("x-request-id").is_some());
    let r = app.request("GET", "/readyz", None, None, &[("x-request-id", "trace-me-1")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["database"], "ok");
    assert_eq!(r.header("x-request-id").as_deref(), Some("trace-me-1"), "an incoming request id is kept");
    app.book("MET-1").await;
    app.get("/v1/shipments/shp_00000000000000000000000000000000").await.problem(404, "not_found");
    let text = String::from_utf8(app.request("GET", "/metrics", None, None, &[]).await.bytes).expect("utf8");
    assert!(
        text.contains("shipgate_http_requests_total{route=\"/v1/shipments\",method=\"POST\",status=\"201\"}"),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/shipments/{id}\",method=\"GET\",status=\"404\""), "{text}");
    assert!(
        text.contains("shipgate_carrier_calls_total{carrier=\"ecourier\",operation=\"SaveOrder\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(text.contains("shipgate_carrier_call_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problems() {
    let app = spawn_app().await;
    app.get("/v1/nothing-here").await.problem(404, "route_not_found");
    app.request("DELETE", "/v1/shipments", Some(&app.key), None, &[]).await.problem(405, "method_not_allowed");
}

#[tokio::test]
async fn carriers_lists_every_carrier_with_capabilities() {
    let app = spawn_app().await;
    let body = app.get("/v1/carriers").await.json();
    let slugs: Vec<&str> =
        body["data"].as_array().expect("data").iter().map(|c| c["slug"].as_str().unwrap_or("")).collect();
    assert_eq!(slugs, ["ecourier", "ecmr", "aftership", "ecomexpress", "ecomdash"]);
    let ec = &body["data"][0];
    assert_eq!(ec["available"], true);
    assert_eq!(ec["capabilities"], json!(["book", "update", "cancel", "quote", "refresh"]));
    assert_eq!(ec["credential_sets"][1][0]["name"], "user_guid");
    let available: Vec<bool> = body["data"].as_array().expect("data").iter().map(|c| c["available"] == true).collect();
    assert_eq!(available, [true, true, true, true, true]);
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let r = app.request("GET", "/docs/", None, None, &[]).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.bytes).contains("swagger-ui"));
    let r = app.request("GET", "/docs/swagger-ui-bundle.js", None, None, &[]).await;
    assert_eq!(r.status, 200, "bundled asset, no CDN");
    let r = app.request("GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(r.json()["openapi"], "3.1.0");
}

#[test]
fn committed_openapi_json_matches_the_code() {
    let generated = shipgate::http::openapi().to_pretty_json().expect("json");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
}

#[test]
fn every_operation_is_tagged_named_and_secured() {
    let doc: serde_json::Value =
        serde_json::from_str(&shipgate::http::openapi().to_json().expect("json")).expect("value");
    assert_eq!(doc["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            count += 1;
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path}");
            if path.starts_with("/v1/inbound/ecomexpress/") {
                // Carriers push with the connection's own credentials, not an API key.
                assert_eq!(op["security"][0]["inbound_ecomexpress_basic"], json!([]), "{method} {path}");
            } else if path.starts_with("/v1/inbound/aftership/") {
                assert_eq!(op["security"][0]["inbound_aftership_hmac"], json!([]), "{method} {path}");
            } else if path.starts_with("/v1/") {
                assert_eq!(op["security"][0]["api_key"], json!([]), "{method} {path}");
            }
        }
    }
    assert!(count >= 20, "{count} operations");
}

/// OpenAPI requires a description on every response (generators refuse the document
/// otherwise), and integrators read a summary and a description per operation.
#[test]
fn every_operation_and_response_is_described() {
    let doc: serde_json::Value =
        serde_json::from_str(&shipgate::http::openapi().to_json().expect("json")).expect("value");
    let shared = &doc["components"]["responses"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            for field in ["summary", "description"] {
                assert!(op[field].as_str().is_some_and(|s| !s.trim().is_empty()), "{method} {path}: no {field}");
            }
            for (status, resp) in op["responses"].as_object().expect("responses") {
                let resolved = match resp["$ref"].as_str() {
                    Some(r) => &shared[r.trim_start_matches("#/components/responses/")],
                    None => resp,
                };
                assert!(
                    resolved["description"].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
        }
    }
}

/// The error model is stated once: every error answer of an API-key operation is a
/// reference to a shared problem+json response, and the common ones are always there.
#[test]
fn error_answers_reference_the_shared_problem_responses() {
    let doc: serde_json::Value =
        serde_json::from_str(&shipgate::http::openapi().to_json().expect("json")).expect("value");
    for name in [
        "BadRequest",
        "Unauthorized",
        "NotFound",
        "Conflict",
        "PayloadTooLarge",
        "UnsupportedMediaType",
        "UnprocessableEntity",
        "TooManyRequests",
        "BadGateway",
        "ServiceUnavailable",
    ] {
        let r = &doc["components"]["responses"][name];
        assert_eq!(
            r["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
            "{name}"
        );
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if op["security"][0]["api_key"].is_null() {
                continue;
            }
            let responses = op["responses"].as_object().expect("responses");
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(resp["$ref"].is_string(), "{method} {path} {status} is not a shared response");
                }
            }
            let mut want = vec!["401", "429", "503"];
            if op["requestBody"]["content"]["application/json"].is_object() {
                want.extend(["400", "413", "415", "422"]);
            }
            if path.contains('{') {
                want.push("404");
            }
            if method == "post" || method == "patch" {
                want.extend(["409", "422"]);
                let params = op["parameters"].as_array().expect("parameters");
                assert!(params.iter().any(|p| p["name"] == "Idempotency-Key"), "{method} {path}");
            }
            for s in want {
                assert!(responses.contains_key(s), "{method} {path} does not declare {s}");
            }
        }
    }
}
