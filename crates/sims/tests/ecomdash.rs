//! The ecomdash simulator driven over HTTP as a client of `Shipments - Submit Tracking Info`
//! would (seed 004): the seed's answers reproduced, every documented refusal, strictness
//! against the seed's schema and field table, per-item failures, concurrency, faults.
//! Answers captured from the simulator are golden files in `contract/fixtures/ecomdash/`
//! (validated by `contract/ecomdash/check.py`); `SIMS_UPDATE_FIXTURES=1` rewrites them.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use sims::ecomdash::{EcomdashSim, EcomdashSimConfig, SimFault};

const PATH: &str = "/api/Shipments/submitTrackingInfo";

struct Server {
    base: String,
    http: reqwest::Client,
}

async fn serve(sim: &EcomdashSim) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = axum::Router::new().nest("/ecomdash", sim.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}/ecomdash"), http: reqwest::Client::new() }
}

impl Server {
    fn submit(&self) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{PATH}", self.base))
            .header("ecd-subscription-key", "ecd-demo")
            .header("Ocp-Apim-Subscription-Key", "sub-demo")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")), headers)
    }

    async fn post(&self, body: &Value) -> (u16, Value) {
        let (s, b, _) = self.send(self.submit().json(body)).await;
        (s, b)
    }
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contract/fixtures/ecomdash").join(name)
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Compares an answer with its golden file (or rewrites it with SIMS_UPDATE_FIXTURES=1).
fn golden(name: &str, actual: &Value) {
    if std::env::var_os("SIMS_UPDATE_FIXTURES").is_some() {
        std::fs::write(fixture_path(name), serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
    }
    assert_eq!(actual, &fixture(name), "{name} differs from what the simulator answers");
}

#[tokio::test]
async fn the_request_behind_the_seeds_answer_gets_the_seeds_answer() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let (status, body) = srv.post(&fixture("from-seed-answer.request.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body, fixture("seed.response-200.json"));
    let submitted = sim.submitted();
    assert_eq!(submitted.len(), 2);
    assert_eq!((submitted[0].shipment_id, submitted[0].tracking_number.as_deref()), (20405, Some("ABC123XYZ")));
    assert_eq!(submitted[1].integration_key, "ecd-demo");
}

#[tokio::test]
async fn the_seeds_placeholder_template_is_refused_for_its_placeholders() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let (status, body) = srv.post(&fixture("seed.request-template.json")).await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "Failure");
    let messages: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(messages.contains(&"[0].ShipmentId must be a whole number greater than 0."), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("[0].ShippedDate must be a date-time string")), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("[0].LineItems[0].EstimatedDeliveryDate")), "{messages:?}");
    assert!(sim.submitted().is_empty());
}

#[tokio::test]
async fn api_management_refuses_a_missing_or_unknown_subscription_key() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let body = fixture("from-seed-answer.request.json");
    let url = format!("{}{PATH}", srv.base);
    let missing = srv.http.post(&url).header("ecd-subscription-key", "ecd-demo").json(&body);
    let (status, answer, _) = srv.send(missing).await;
    assert_eq!(status, 401);
    assert_eq!(
        answer,
        json!({"statusCode": 401, "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."})
    );
    let unknown = srv
        .http
        .post(&url)
        .header("ecd-subscription-key", "ecd-demo")
        .header("Ocp-Apim-Subscription-Key", "sub-other")
        .json(&body);
    let (status, answer, _) = srv.send(unknown).await;
    assert_eq!(status, 401);
    assert_eq!(
        answer["message"],
        "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
    );
    assert!(sim.submitted().is_empty());
    assert_eq!(sim.stats().unauthorized, 2);
}

#[tokio::test]
async fn a_missing_empty_or_unknown_integration_key_gets_the_seeds_403() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let body = fixture("from-seed-answer.request.json");
    let url = format!("{}{PATH}", srv.base);
    for ecd in [None, Some(""), Some("ecd-unknown")] {
        let mut req = srv.http.post(&url).header("Ocp-Apim-Subscription-Key", "sub-demo").json(&body);
        if let Some(k) = ecd {
            req = req.header("ecd-subscription-key", k);
        }
        let (status, answer, _) = srv.send(req).await;
        assert_eq!(status, 403, "{ecd:?}");
        assert_eq!(answer, fixture("seed.error-403.json"), "{ecd:?}");
    }
    assert!(sim.submitted().is_empty());
    assert_eq!(sim.stats().forbidden, 3);
}

#[tokio::test]
async fn the_retryable_500_is_the_seeds_and_stores_nothing() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    sim.fail_next(1, SimFault::server_error());
    let body = fixture("from-seed-answer.request.json");
    let (status, answer) = srv.post(&body).await;
    assert_eq!((status, answer), (500, fixture("seed.error-500.json")));
    assert!(sim.submitted().is_empty());
    let (status, _) = srv.post(&body).await;
    assert_eq!(status, 200);
    assert_eq!(sim.submitted().len(), 2);
}

#[tokio::test]
async fn bodies_outside_the_schema_or_the_field_table_are_refused_in_the_envelope() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let (status, answer) = srv.post(&fixture("captured.bad-request.invalid-request.json")).await;
    assert_eq!(status, 400);
    golden("captured.bad-request.response.json", &answer);

    let cases = [
        (
            json!({"ShipmentId": 1, "TrackingNumber": "T"}),
            "The request body must be a JSON array of fulfillment requests.",
        ),
        (json!([]), "The request body must hold at least one fulfillment request."),
        (json!([{"ShipmentId": 1}]), "[0].TrackingNumber is required if LineItems are not passed in."),
        (
            json!([{"ShipmentId": 1, "TrackingNumber": "  "}]),
            "[0].TrackingNumber is required if LineItems are not passed in.",
        ),
        (json!([{"ShipmentId": 1, "TrackingNumber": 5}]), "[0].TrackingNumber must be a string."),
        (json!([{"ShipmentId": 1, "TrackingNumber": "T", "LineItems": {}}]), "[0].LineItems must be an array."),
        (json!([{"ShipmentId": -4, "TrackingNumber": "T"}]), "[0].ShipmentId must be a whole number greater than 0."),
        (
            json!([{"ShipmentId": 1, "TrackingNumber": "T", "LineItems": [{"LineItemId": 1, "TrackingUrl": "x"}]}]),
            "[0].LineItems[0].TrackingUrl is not a member of the request (additionalProperties: false).",
        ),
    ];
    let refused = 1 + cases.len() as u64 + 1; // the golden file, the cases, the broken JSON below
    for (body, message) in cases {
        let (status, answer) = srv.post(&body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            answer,
            json!({"status": "Failure", "messages": [message], "pagination": null, "data": null}),
            "{body}"
        );
    }

    let raw = srv.submit().header("Content-Type", "application/json").body("[{\"ShipmentId\": 1,");
    let (status, answer, _) = srv.send(raw).await;
    assert_eq!(status, 400);
    assert!(answer["messages"][0].as_str().unwrap().starts_with("The request body is not valid JSON"));

    let text = srv.submit().header("Content-Type", "text/plain").body("[]");
    let (status, answer, _) = srv.send(text).await;
    assert_eq!(status, 415);
    assert_eq!(
        answer,
        json!({"Message": "The request entity's media type 'text/plain' is not supported for this resource."})
    );
    let (status, _, _) = srv.send(srv.submit().body("[]")).await;
    assert_eq!(status, 415);

    assert!(sim.submitted().is_empty());
    assert_eq!(sim.stats().bad_requests, refused, "415s are not body refusals");
}

#[tokio::test]
async fn line_items_are_echoed_as_sent_and_inherit_the_base_values() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let (status, answer) = srv.post(&fixture("captured.line-items.request.json")).await;
    assert_eq!(status, 200);
    golden("captured.line-items.response.json", &answer);
    // Ids are echoed as sent (a .NET decimal keeps 28.0), date-only values at midnight.
    let first = &answer["data"][0]["Request"];
    assert_eq!(serde_json::to_string(&first["ShipmentId"]).unwrap(), "28.0");
    assert_eq!(first["EstimatedDeliveryDate"], "2016-07-21T00:00:00");
    assert_eq!(
        first["LineItems"][0],
        json!({"LineItemId": 101, "CarrierId": null, "TrackingNumber": null, "TrackingURL": null, "EstimatedDeliveryDate": null})
    );
    assert!(first.get("TrackingURL").is_none(), "the seed's echo has no base TrackingURL");

    let submitted = sim.submitted();
    assert_eq!(submitted.len(), 2);
    let lines = &submitted[0].line_items;
    assert_eq!(
        (lines[0].line_item_id, lines[0].carrier_id, lines[0].tracking_number.as_deref()),
        (101, Some(3), Some("1Z999AA10123456784"))
    );
    assert_eq!(
        (lines[1].line_item_id, lines[1].carrier_id, lines[1].tracking_number.as_deref()),
        (102, Some(4), Some("1Z999AA10123456785"))
    );
    assert_eq!(submitted[0].tracking_url.as_deref(), Some("https://track.example/1Z999AA10123456784"));
    assert_eq!(submitted[1].tracking_number, None);
    assert_eq!(submitted[1].line_items[1].tracking_number.as_deref(), Some("SPLIT-2"));
}

#[tokio::test]
async fn a_per_item_failure_fails_that_item_only_and_only_as_often_as_asked() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    sim.fail_item(31, "Shipment 31 could not be updated, please try again.", 1);
    let body = fixture("captured.partial-failure.request.json");
    let (status, answer) = srv.post(&body).await;
    assert_eq!(status, 200);
    golden("captured.partial-failure.response.json", &answer);
    assert_eq!(answer["status"], "Success");
    assert_eq!(
        (answer["data"][0]["WasSuccessful"].clone(), answer["data"][1]["WasSuccessful"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(answer["data"][1]["Messages"], json!(["Shipment 31 could not be updated, please try again."]));
    assert_eq!(sim.submitted().iter().map(|s| s.shipment_id).collect::<Vec<_>>(), [30]);

    let (_, again) = srv.post(&body).await;
    assert_eq!(
        again["data"][1],
        json!({"Request": again["data"][1]["Request"], "WasSuccessful": true, "Messages": null})
    );
    let stats = sim.stats();
    assert_eq!((stats.accepted_items, stats.failed_items), (3, 1));
}

#[tokio::test]
async fn more_than_max_concurrency_calls_in_flight_per_key_pair_get_429() {
    let config =
        EcomdashSimConfig { integration_keys: vec!["ecd-demo".into(), "ecd-other".into()], ..Default::default() };
    let sim = EcomdashSim::new(config);
    let srv = serve(&sim).await;
    sim.set_latency(Duration::from_millis(600));
    let body = json!([{"ShipmentId": 1, "TrackingNumber": "T"}]);
    let mut calls = Vec::new();
    for i in 0..8 {
        let ecd = if i < 5 { "ecd-demo" } else { "ecd-other" };
        let req = srv
            .http
            .post(format!("{}{PATH}", srv.base))
            .header("ecd-subscription-key", ecd)
            .header("Ocp-Apim-Subscription-Key", "sub-demo")
            .json(&body);
        calls.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (ecd, r.status().as_u16(), retry_after, r.json::<Value>().await.unwrap())
        }));
    }
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.unwrap());
    }
    let count = |ecd: &str, status: u16| results.iter().filter(|r| r.0 == ecd && r.1 == status).count();
    assert_eq!((count("ecd-demo", 200), count("ecd-demo", 429)), (3, 2));
    assert_eq!(count("ecd-other", 200), 3);
    let throttled = results.iter().find(|r| r.1 == 429).unwrap();
    assert_eq!(throttled.2.as_deref(), Some("1"));
    assert_eq!(throttled.3, json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."}));
    let stats = sim.stats();
    assert_eq!((stats.max_in_flight, stats.throttled, stats.in_flight), (3, 2, 0));
}

#[tokio::test]
async fn rate_limit_and_disconnect_faults() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let body = json!([{"ShipmentId": 7, "TrackingNumber": "T7"}]);
    sim.fail_next(1, SimFault::RateLimited(7));
    let (status, answer, headers) = srv.send(srv.submit().json(&body)).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "7"));
    assert_eq!(answer["message"], "Rate limit is exceeded. Try again in 7 seconds.");

    sim.fail_next(1, SimFault::Disconnect);
    assert!(srv.submit().json(&body).send().await.and_then(|r| r.error_for_status()).is_err());
    assert!(sim.submitted().is_empty());

    sim.fail_next(1, SimFault::DisconnectAfterCommit);
    let lost = srv.submit().json(&body).send().await;
    let lost = match lost {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(lost.is_err(), "the answer must be lost");
    assert_eq!(sim.submitted().len(), 1, "the item was stored before the connection dropped");
}

#[tokio::test]
async fn other_paths_and_methods_get_api_managements_404() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let get = srv.http.get(format!("{}{PATH}", srv.base)).header("Ocp-Apim-Subscription-Key", "sub-demo");
    let (status, answer, _) = srv.send(get).await;
    assert_eq!((status, answer), (404, json!({"statusCode": 404, "message": "Resource not found"})));
    let other = srv.http.post(format!("{}/api/shipments/submittrackinginfo", srv.base)).json(&json!([]));
    assert_eq!(srv.send(other).await.0, 404);
}

#[tokio::test]
async fn the_control_api_mirrors_the_knobs_and_keeps_no_key_values() {
    let sim = EcomdashSim::default();
    let srv = serve(&sim).await;
    let ctl = |p: &str| format!("{}/_sim/{p}", srv.base);
    let r = srv
        .http
        .post(ctl("faults"))
        .json(&json!({"count": 1, "fault": {"type": "server_error"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = srv
        .http
        .post(ctl("item-faults"))
        .json(&json!({"shipment_id": 9, "message": "nope", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let bad = srv.http.post(ctl("faults")).json(&json!({"count": 1, "fault": {"type": "boom"}})).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    let body = json!([{"ShipmentId": 8, "TrackingNumber": "T8"}, {"ShipmentId": 9, "TrackingNumber": "T9"}]);
    assert_eq!(srv.post(&body).await.0, 500);
    let (_, answer) = srv.post(&body).await;
    assert_eq!(answer["data"][1]["Messages"], json!(["nope"]));

    let stats: Value = srv.http.get(ctl("stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["calls"]["submit_tracking_info"], 2);
    assert_eq!(stats["faults_injected"], 1);
    let requests: Value = srv.http.get(ctl("requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests[0]["auth_headers"], json!(["ecd-subscription-key", "ocp-apim-subscription-key"]));
    assert_eq!(requests[0]["body"], body);
    let log = requests.to_string();
    assert!(!log.contains("sub-demo") && !log.contains("ecd-demo"), "key values never reach the log: {log}");

    let state: Value = srv.http.get(ctl("state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["submitted"].as_array().unwrap().len(), 1);
    assert_eq!(srv.http.post(ctl("reset")).send().await.unwrap().status(), 204);
    assert!(sim.submitted().is_empty());
    assert_eq!(srv.http.put(ctl("state")).json(&state).send().await.unwrap().status(), 204);
    assert_eq!(sim.submitted()[0].shipment_id, 8);
    let bad_state = srv.http.put(ctl("state")).json(&json!({"version": 2})).send().await.unwrap();
    assert_eq!(bad_state.status(), 400);
}
