//! The eCMR.services simulator driven over HTTP as a client of the carrier would (seed 000,
//! docs/carriers/ecmr.md `ecmr`): token exchange, bearer calls, store/details/overview, the CMR link,
//! every refusal, lifecycle, faults and the control API.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use sims::ecmr::{EcmrSim, EcmrSimConfig, SimFault, SimOrganization, Status};

struct Server {
    base: String,
    http: reqwest::Client,
}

async fn serve(sim: &EcmrSim) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = axum::Router::new().nest("/ecmr", sim.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}/ecmr"), http: reqwest::Client::new() }
}

async fn answer(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn token_for(&self, client_id: &str, code: &str) -> (u16, Value) {
        answer(self.http.post(self.url("/api/token")).json(&json!({"client_id": client_id, "code": code}))).await
    }

    async fn token(&self) -> String {
        let (status, body) = self.token_for("org-demo", "token-demo").await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn store(&self, token: &str, body: &Value) -> (u16, Value) {
        answer(self.http.post(self.url("/api/shipments")).bearer_auth(token).json(body)).await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path)).bearer_auth(token)).await
    }
}

fn shipment(reference: &str) -> Value {
    json!({"shipment": {
        "reference": reference,
        "consignor": {"name": "Acme Logistics BV", "address": "Havenweg 1", "postal_code": "3011 AA", "city": "Rotterdam", "country": "NL"},
        "consignee": {"name": "Beta Handel GmbH", "address": "Lagerstrasse 5", "postal_code": "20095", "city": "Hamburg", "country": "DE"},
        "taking_over": {"place": {"address": "Havenweg 1", "postal_code": "3011 AA", "city": "Rotterdam", "country": "NL"}, "date": "2025-05-28T08:00:00+02:00"},
        "delivery": {"place": {"address": "Lagerstrasse 5", "postal_code": "20095", "city": "Hamburg", "country": "DE"}, "date": "2025-05-29T16:00:00+02:00"},
        "goods": [{"marks": "ACME-1", "packages": 12, "packing": "pallets", "description": "Bicycle parts", "gross_weight_kg": 2400.5, "volume_m3": 14.2}],
        "instructions": "Keep dry"
    }})
}

#[tokio::test]
async fn token_then_store_details_overview_and_the_cmr_document() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let r = srv
        .http
        .post(srv.url("/api/token"))
        .json(&json!({"client_id": "org-demo", "code": "token-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let token: Value = r.json().await.unwrap();
    assert_eq!((token["token_type"].clone(), token["expires_in"].clone()), (json!("Bearer"), json!(3600)));
    let access = token["access_token"].as_str().unwrap();
    assert!(access.len() >= 32);

    let (status, stored) = srv.store(access, &shipment("SO-1001")).await;
    assert_eq!(status, 201, "{stored}");
    let tn = stored["tracking_number"].as_str().unwrap().to_owned();
    assert_eq!(stored, json!({"tracking_number": tn, "reference": "SO-1001", "status": "created"}));

    let (status, details) = srv.get(access, &format!("/api/shipments/{tn}")).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = details.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["documents", "history", "reference", "status", "tracking_number"]);
    assert_eq!((details["reference"].clone(), details["status"].clone()), (json!("SO-1001"), json!("created")));
    let first = &details["history"][0];
    assert_eq!((first["status"].clone(), first["by"].clone()), (json!("created"), json!("org-demo (API)")));
    assert!(DateTime::parse_from_rfc3339(first["at"].as_str().unwrap()).is_ok());
    assert_eq!(details["documents"][0]["type"], "cmr");
    let url = details["documents"][0]["url"].as_str().unwrap();
    assert_eq!(url, srv.url(&format!("/api/shipments/{tn}/documents/cmr.pdf")));

    let pdf = srv.http.get(url).bearer_auth(access).send().await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-1.4") && bytes.ends_with(b"%%EOF\n"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&tn) && text.contains("Acme Logistics BV") && text.contains("Bicycle parts"));
    assert_eq!(srv.http.get(url).send().await.unwrap().status(), 401, "the document needs the bearer token too");

    let (status, overview) = srv.get(access, "/api/shipments?page=1&per_page=10").await;
    assert_eq!(status, 200);
    assert_eq!(
        (overview["page"].clone(), overview["per_page"].clone(), overview["total"].clone()),
        (json!(1), json!(10), json!(1))
    );
    assert_eq!(overview["shipments"][0]["tracking_number"], json!(tn));
    assert_eq!(overview["shipments"][0]["status"], "created");
    let (_, defaults) = srv.get(access, "/api/shipments").await;
    assert_eq!((defaults["page"].clone(), defaults["per_page"].clone()), (json!(1), json!(25)));
}

#[tokio::test]
async fn a_store_with_a_known_reference_updates_until_loading_starts() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    let (_, first) = srv.store(&token, &shipment("SO-2")).await;
    let tn = first["tracking_number"].as_str().unwrap().to_owned();
    let mut changed = shipment("SO-2");
    changed["shipment"]["goods"][0]["packages"] = json!(13);
    let (status, again) = srv.store(&token, &changed).await;
    assert_eq!((status, again), (200, json!({"tracking_number": tn, "reference": "SO-2", "status": "created"})));
    assert_eq!(sim.shipment_count(), 1);
    assert_eq!(sim.shipment(&tn).unwrap()["shipment"]["goods"][0]["packages"], 13);
    assert_eq!(sim.shipment(&tn).unwrap()["history"].as_array().unwrap().len(), 1, "an update is no status change");

    for _ in 0..4 {
        sim.advance(&tn).unwrap();
    }
    assert_eq!(sim.shipment(&tn).unwrap()["status"], "loading");
    let (status, refused) = srv.store(&token, &changed).await;
    assert_eq!(status, 409);
    assert_eq!(refused["field"], "shipment.reference");
    assert!(refused["error"].as_str().unwrap().contains("loading"));
}

#[tokio::test]
async fn the_token_exchange_refuses_unknown_wrong_and_expired_api_tokens() {
    let expired_at = Utc.with_ymd_and_hms(2025, 5, 28, 1, 59, 59).unwrap();
    let mut config = EcmrSimConfig::default();
    config.organizations.push(SimOrganization {
        organization_id: "org-old".into(),
        api_token: "10f258b3da58".into(),
        api_token_expires_at: expired_at,
    });
    let sim = EcmrSim::new(config);
    let srv = serve(&sim).await;
    for (client_id, code) in [("org-nope", "token-demo"), ("org-demo", "token-wrong"), ("org-old", "token-demo")] {
        let (status, body) = srv.token_for(client_id, code).await;
        assert_eq!((status, body), (401, json!({"error": "unknown organisation or API token", "field": "code"})));
    }
    let (status, body) = srv.token_for("org-old", "10f258b3da58").await;
    assert_eq!(
        (status, body),
        (401, json!({"error": "the API token expired at 2025-05-28T01:59:59Z", "field": "code"}))
    );
    assert_eq!(sim.stats().token_refusals, 4);
    assert_eq!(sim.stats().token_exchanges, 0);

    let (status, body) = answer(srv.http.post(srv.url("/api/token")).json(&json!({"client_id": "org-demo"}))).await;
    assert_eq!((status, body["field"].clone()), (422, json!("code")));
    let (status, body) =
        answer(srv.http.post(srv.url("/api/token")).json(&json!({"client_id": 7, "code": "token-demo"}))).await;
    assert_eq!((status, body["field"].clone()), (422, json!("client_id")));
    let form = srv
        .http
        .post(srv.url("/api/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=org-demo&code=token-demo");
    assert_eq!(answer(form).await.0, 415);
    let broken =
        srv.http.post(srv.url("/api/token")).header("content-type", "application/json").body("{\"client_id\":");
    assert_eq!(answer(broken).await, (400, answer_shape_of_broken_json()));
}

fn answer_shape_of_broken_json() -> Value {
    json!({"error": "the body is not valid JSON: EOF while parsing a value at line 1 column 13", "field": null})
}

#[tokio::test]
async fn bearer_calls_need_a_valid_unexpired_access_token() {
    let sim = EcmrSim::new(EcmrSimConfig { access_token_ttl: Duration::from_millis(1200), ..Default::default() });
    let srv = serve(&sim).await;
    let r = srv.http.get(srv.url("/api/shipments")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"eCMR.services\"");
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "Authorization");
    assert_eq!(srv.get("not-a-token", "/api/shipments").await.0, 401);
    let basic = srv.http.get(srv.url("/api/shipments")).basic_auth("org-demo", Some("token-demo"));
    assert_eq!(answer(basic).await.0, 401);

    let (_, token) = srv.token_for("org-demo", "token-demo").await;
    assert_eq!(token["expires_in"], 2, "expires_in rounds a part second up");
    let token = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(srv.get(&token, "/api/shipments").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = srv.http.get(srv.url("/api/shipments")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "the access token has expired");

    let fresh = srv.token().await;
    assert_eq!(srv.get(&fresh, "/api/shipments").await.0, 200);
    sim.expire_tokens();
    assert_eq!(srv.get(&fresh, "/api/shipments").await.0, 401);
    assert_eq!(sim.stats().unauthorized, 5);
    assert_eq!(sim.stats().token_exchanges, 2);
}

#[tokio::test]
async fn a_store_without_consignor_consignee_goods_or_with_a_bad_value_is_422_naming_the_field() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    let remove = |key: &str| {
        let mut b = shipment("SO-X");
        b["shipment"].as_object_mut().unwrap().remove(key);
        b
    };
    let set = |path: &[&str], v: Value| {
        let mut b = shipment("SO-X");
        let mut node = &mut b["shipment"];
        for p in &path[..path.len() - 1] {
            node = if let Ok(i) = p.parse::<usize>() { &mut node[i] } else { &mut node[*p] };
        }
        node[path[path.len() - 1]] = v;
        b
    };
    let cases = [
        (remove("consignor"), "shipment.consignor"),
        (remove("consignee"), "shipment.consignee"),
        (remove("goods"), "shipment.goods"),
        (remove("reference"), "shipment.reference"),
        (remove("taking_over"), "shipment.taking_over"),
        (set(&["goods"], json!([])), "shipment.goods"),
        (set(&["goods", "0", "packages"], json!(0)), "shipment.goods[0].packages"),
        (set(&["goods", "0", "description"], json!("")), "shipment.goods[0].description"),
        (set(&["goods", "0", "gross_weight_kg"], json!(-1)), "shipment.goods[0].gross_weight_kg"),
        (set(&["consignee", "country"], json!("Germany")), "shipment.consignee.country"),
        (set(&["consignor", "city"], json!(null)), "shipment.consignor.city"),
        (set(&["taking_over", "date"], json!("2025-05-28 08:00")), "shipment.taking_over.date"),
        (set(&["delivery", "place"], json!("Hamburg")), "shipment.delivery.place"),
        (set(&["consignor", "vat"], json!("NL1")), "shipment.consignor.vat"),
        (shipment("SO-X")["shipment"].clone(), "shipment"),
    ];
    for (body, field) in cases {
        let (status, answer) = srv.store(&token, &body).await;
        assert_eq!(status, 422, "{field}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{answer}");
    }
    assert_eq!(sim.shipment_count(), 0);
    let mut optional_nulls = shipment("SO-N");
    optional_nulls["shipment"]["instructions"] = Value::Null;
    optional_nulls["shipment"]["delivery"]["date"] = Value::Null;
    assert_eq!(srv.store(&token, &optional_nulls).await.0, 201);
}

#[tokio::test]
async fn shipments_are_seen_only_by_their_organisation() {
    let mut config = EcmrSimConfig::default();
    config.organizations.push(SimOrganization {
        organization_id: "org-b".into(),
        api_token: "token-b".into(),
        api_token_expires_at: Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
    });
    let sim = EcmrSim::new(config);
    let srv = serve(&sim).await;
    let a = srv.token().await;
    let (_, b) = srv.token_for("org-b", "token-b").await;
    let b = b["access_token"].as_str().unwrap().to_owned();
    let (_, stored) = srv.store(&a, &shipment("SO-1")).await;
    let tn = stored["tracking_number"].as_str().unwrap();
    let (status, body) = srv.get(&b, &format!("/api/shipments/{tn}")).await;
    assert_eq!((status, body), (404, json!({"error": format!("shipment {tn} not found"), "field": "tracking_number"})));
    assert_eq!(srv.get(&b, &format!("/api/shipments/{tn}/documents/cmr.pdf")).await.0, 404);
    assert_eq!(srv.get(&b, "/api/shipments").await.1["total"], 0);
    assert_eq!(srv.get(&a, "/api/shipments/ECMR9999999999").await.0, 404);
    // The same reference in another organisation is another shipment.
    let (status, other) = srv.store(&b, &shipment("SO-1")).await;
    assert_eq!(status, 201);
    assert_ne!(other["tracking_number"], stored["tracking_number"]);
}

#[tokio::test]
async fn the_overview_pages_10000_shipments_exactly_and_stably() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    srv.store(&token, &shipment("SO-TEMPLATE")).await;
    let template = sim.export_state()["shipments"][0].clone();
    let shipments: Vec<Value> = (1..=10_000)
        .map(|i| {
            let mut s = template.clone();
            s["seq"] = json!(i);
            s["tracking_number"] = json!(format!("ECMR{i:010}"));
            s["reference"] = json!(format!("SO-{i}"));
            s
        })
        .collect();
    sim.import_state(json!({"version": 1, "next_seq": 10_001, "shipments": shipments})).unwrap();
    assert_eq!(sim.shipment_count(), 10_000);
    let token = srv.token().await; // import forgets access tokens

    let mut seen = Vec::new();
    for page in 1..=100 {
        let (status, body) = srv.get(&token, &format!("/api/shipments?page={page}&per_page=100")).await;
        assert_eq!(status, 200);
        assert_eq!(body["total"], if page <= 50 { 10_000 } else { 10_001 });
        let list = body["shipments"].as_array().unwrap();
        assert_eq!(list.len(), 100);
        if page == 50 {
            // A shipment stored mid-reconciliation lands at the end and shifts nothing.
            assert_eq!(srv.store(&token, &shipment("SO-NEW")).await.0, 201);
        }
        seen.extend(list.iter().map(|s| s["tracking_number"].as_str().unwrap().to_owned()));
    }
    let expected: Vec<String> = (1..=10_000).map(|i| format!("ECMR{i:010}")).collect();
    assert_eq!(seen, expected);
    let (_, last) = srv.get(&token, "/api/shipments?page=101&per_page=100").await;
    assert_eq!(
        last["shipments"],
        json!([{"tracking_number": "ECMR0000010001", "reference": "SO-NEW", "status": "created", "created_at": last["shipments"][0]["created_at"], "updated_at": last["shipments"][0]["updated_at"]}])
    );
    let (_, beyond) = srv.get(&token, "/api/shipments?page=500&per_page=100").await;
    assert_eq!((beyond["shipments"].clone(), beyond["total"].clone()), (json!([]), json!(10_001)));

    for (query, field) in
        [("page=0", "page"), ("page=x", "page"), ("per_page=101", "per_page"), ("per_page=-1", "per_page")]
    {
        let (status, body) = srv.get(&token, &format!("/api/shipments?{query}")).await;
        assert_eq!((status, body["field"].clone()), (422, json!(field)), "{query}");
    }
}

#[tokio::test]
async fn advance_walks_the_statuses_with_who_and_when_and_cancel_ends_early() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    let (_, a) = srv.store(&token, &shipment("SO-A")).await;
    let tn = a["tracking_number"].as_str().unwrap().to_owned();
    let mut walked = vec![Status::Created];
    while let Ok(next) = sim.advance(&tn) {
        walked.push(next);
    }
    let names: Vec<&str> = walked.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "created",
            "sent",
            "accepted",
            "planned",
            "loading",
            "departed",
            "in_progress",
            "arrived",
            "unloaded",
            "delivered"
        ]
    );
    let (_, details) = srv.get(&token, &format!("/api/shipments/{tn}")).await;
    let history = details["history"].as_array().unwrap();
    assert_eq!(history.iter().map(|h| h["status"].as_str().unwrap()).collect::<Vec<_>>(), names);
    assert!(history.iter().all(|h| !h["by"].as_str().unwrap().is_empty() && h["note"].is_string()));
    let times: Vec<DateTime<Utc>> = history.iter().map(|h| h["at"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(history[9]["by"], "consignee");
    assert!(sim.advance(&tn).unwrap_err().contains("delivered"));
    assert!(sim.cancel(&tn).is_err());

    let (_, b) = srv.store(&token, &shipment("SO-B")).await;
    let tb = b["tracking_number"].as_str().unwrap();
    let ctl = |p: &str| srv.url(&format!("/_sim/shipments/{tb}/{p}"));
    let (status, body) = answer(srv.http.post(ctl("advance"))).await;
    assert_eq!((status, body), (200, json!({"tracking_number": tb, "status": "sent"})));
    assert_eq!(answer(srv.http.post(ctl("cancel"))).await.0, 200);
    let (_, details) = srv.get(&token, &format!("/api/shipments/{tb}")).await;
    assert_eq!(details["status"], "cancelled");
    assert_eq!(details["history"][2]["by"], "org-demo");
    assert_eq!(answer(srv.http.post(ctl("advance"))).await.0, 409);
    assert_eq!(answer(srv.http.post(srv.url("/_sim/shipments/ECMR0/advance"))).await.0, 404);
    let (status, refused) = srv.store(&token, &shipment("SO-B")).await;
    assert_eq!((status, refused["field"].clone()), (409, json!("shipment.reference")));
}

#[tokio::test]
async fn faults_hit_the_named_operation_and_a_lost_answer_leaves_the_store_done() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    sim.fail_next(Some("get_shipment"), 1, SimFault::Http(500, json!({"error": "boom", "field": null})));
    sim.fail_next(Some("store_shipment"), 2, SimFault::Http(503, json!({"error": "maintenance", "field": null})));
    assert_eq!(srv.store(&token, &shipment("SO-F")).await, (503, json!({"error": "maintenance", "field": null})));
    assert_eq!(srv.store(&token, &shipment("SO-F")).await.0, 503);
    assert_eq!(sim.shipment_count(), 0);

    sim.fail_next(Some("store_shipment"), 1, SimFault::DisconnectAfterCommit);
    let lost = srv.http.post(srv.url("/api/shipments")).bearer_auth(&token).json(&shipment("SO-F")).send().await;
    assert!(lost.is_err() || lost.unwrap().bytes().await.is_err(), "the answer must be lost");
    assert_eq!(sim.shipment_count(), 1);
    let (status, retried) = srv.store(&token, &shipment("SO-F")).await;
    assert_eq!(status, 200, "the retry finds the stored shipment by reference");
    let tn = retried["tracking_number"].as_str().unwrap().to_owned();
    assert_eq!(sim.shipment_count(), 1);

    assert_eq!(srv.get(&token, &format!("/api/shipments/{tn}")).await.0, 500);
    assert_eq!(srv.get(&token, &format!("/api/shipments/{tn}")).await.0, 200);

    sim.fail_next(None, 1, SimFault::Disconnect);
    assert!(
        srv.http
            .post(srv.url("/api/token"))
            .json(&json!({"client_id": "org-demo", "code": "token-demo"}))
            .send()
            .await
            .is_err()
    );
    sim.fail_next(Some("token"), 1, SimFault::Delay(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    assert_eq!(srv.token_for("org-demo", "token-demo").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.stats().faults_injected, 6);
}

#[tokio::test]
async fn requests_stats_and_state_through_the_control_api() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let token = srv.token().await;
    let (_, stored) = srv.store(&token, &shipment("SO-S")).await;
    let tn = stored["tracking_number"].as_str().unwrap().to_owned();
    srv.get(&token, "/api/shipments").await;

    let requests: Value = srv.http.get(srv.url("/_sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests[0]["op"], "token");
    assert_eq!(requests[0]["body"], json!({"client_id": "org-demo", "code": "<redacted>"}));
    assert!(!requests.to_string().contains("token-demo"), "the API token never reaches the log");
    assert!(!requests.to_string().contains(&token), "nor the access token");
    assert_eq!(requests[1]["auth_headers"], json!(["authorization"]));
    assert_eq!(requests[1]["body"], shipment("SO-S"));
    assert_eq!((requests[2]["method"].clone(), requests[2]["path"].clone()), (json!("GET"), json!("/api/shipments")));

    let stats: Value = srv.http.get(srv.url("/_sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["calls"], json!({"list_shipments": 1, "store_shipment": 1, "token": 1}));
    assert_eq!((stats["token_exchanges"].clone(), stats["shipments"].clone()), (json!(1), json!(1)));

    let fault = json!({"op": "list_shipments", "count": 1, "fault": {"type": "http", "status": 502, "body": {"error": "bad gateway"}}});
    assert_eq!(srv.http.post(srv.url("/_sim/faults")).json(&fault).send().await.unwrap().status(), 204);
    assert_eq!(srv.get(&token, "/api/shipments").await.0, 502);
    let bad = json!({"op": "nope", "count": 1, "fault": {"type": "disconnect"}});
    assert_eq!(srv.http.post(srv.url("/_sim/faults")).json(&bad).send().await.unwrap().status(), 400);

    let state: Value = srv.http.get(srv.url("/_sim/state")).send().await.unwrap().json().await.unwrap();
    let original = sim.shipment(&tn);
    assert_eq!(srv.http.post(srv.url("/_sim/reset")).send().await.unwrap().status(), 204);
    assert_eq!(sim.shipment_count(), 0);
    assert_eq!(srv.get(&token, "/api/shipments").await.0, 401, "reset forgets access tokens");
    let restored = EcmrSim::default();
    restored.import_state(state.clone()).unwrap();
    assert_eq!(restored.shipment(&tn), original);
    assert_eq!(srv.http.put(srv.url("/_sim/state")).json(&state).send().await.unwrap().status(), 204);
    let token = srv.token().await;
    assert_eq!(srv.get(&token, &format!("/api/shipments/{tn}")).await.1["reference"], "SO-S");
    let (_, next) = srv.store(&token, &shipment("SO-T")).await;
    assert_ne!(next["tracking_number"], json!(tn), "tracking numbers are not reused after an import");
    let broken = json!({"version": 1, "shipments": [{"tracking_number": "X"}]});
    assert_eq!(srv.http.put(srv.url("/_sim/state")).json(&broken).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let sim = EcmrSim::default();
    let srv = serve(&sim).await;
    let (status, body) = answer(srv.http.get(srv.url("/api/orders"))).await;
    assert_eq!((status, body["field"].clone()), (404, Value::Null));
    let (status, body) = answer(srv.http.delete(srv.url("/api/shipments"))).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"], "DELETE is not allowed on /api/shipments");
}
