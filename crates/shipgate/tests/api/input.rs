//! No input reaches a 500, and every refusal is a problem a person can read: NUL in
//! any text, dates Postgres cannot store, trailing JSON, HTTP-layer errors, messages
//! in words (issue 9 "A 500 from input", "Error messages"; issue 10 items 3 and 8).

use serde_json::{Value, json};
use sims::ecomexpress::{EcomPusher, Scan};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Resp, TestApp, spawn_app};

const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// The one refused field of a 422 problem: (field, message).
#[track_caller]
fn refused(r: &Resp) -> (String, String) {
    let p = r.problem(422, "validation_failed");
    let e = &p["errors"][0];
    (e["field"].as_str().unwrap_or_default().to_owned(), e["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_nul_in_a_query_string_is_refused_naming_the_parameter() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/v1/status-mappings?carrier=%00", "carrier"),
        ("/v1/status-mappings/unmapped?carrier=%00", "carrier"),
        ("/v1/shipments?reference=%00", "reference"),
        ("/v1/shipments?carrier=ecourier%00", "carrier"),
        ("/v1/shipments?tracking_number=A%00B", "tracking_number"),
        ("/v1/shipments?connection_id=%00", "connection_id"),
        ("/v1/events?shipment_id=%00", "shipment_id"),
        ("/v1/jobs?state=%00", "state"),
    ] {
        let r = app.get(path).await;
        assert_eq!(refused(&r), (field.to_owned(), NUL_MESSAGE.to_owned()), "{path}");
        assert_eq!(r.json()["title"], "Query string is invalid", "{path}");
    }
    // The six characters `\u0000` are text, not a NUL.
    let r = app.get("/v1/shipments?reference=%5Cu0000").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
}

#[tokio::test]
async fn a_nul_in_a_path_is_refused_naming_the_parameter() {
    let app = spawn_app().await;
    for path in ["/v1/shipments/%00", "/v1/connections/con_%00", "/v1/webhook-endpoints/%00/deliveries", "/v1/jobs/%00"]
    {
        let r = app.get(path).await;
        assert_eq!(refused(&r), ("id".to_owned(), NUL_MESSAGE.to_owned()), "{path}");
        assert_eq!(r.json()["title"], "Path parameter is invalid");
    }
    let r = app.request("POST", "/v1/inbound/aftership/con_%00", None, Some(&json!({})), &[]).await;
    assert_eq!(refused(&r).0, "connection_id");
    let r = app.request("POST", "/v1/inbound/ecomexpress/con_%00", None, Some(&json!({"awb": "A1"})), &[]).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["status"], false);
    assert_eq!(r.json()["reason"], format!("connection_id {NUL_MESSAGE}"));
}

#[tokio::test]
async fn a_nul_in_a_json_string_or_key_is_refused_naming_it_and_escaped_text_is_kept() {
    let app = spawn_app().await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = app.shipment_body("NUL-1");
        f(&mut b);
        b
    };
    for (body, field, message) in [
        (with(&|b| b["reference"] = json!("NUL\u{0}1")), "reference", NUL_MESSAGE),
        (with(&|b| b["stops"][1]["address"]["city"] = json!("Orl\u{0}ando")), "stops[1].address.city", NUL_MESSAGE),
        (
            with(&|b| b["metadata"] = json!({"erp\u{0}order": "4711"})),
            "metadata",
            "names in this object must not contain the NUL character (U+0000)",
        ),
        (with(&|b| b["parcels"][0]["description"] = json!("\u{0}")), "parcels[0].description", NUL_MESSAGE),
    ] {
        let r = app.post("/v1/shipments", &body).await;
        assert_eq!(refused(&r), (field.to_owned(), message.to_owned()), "{body}");
    }
    for (method, path, body, field) in [
        ("POST", "/v1/connections", json!({"carrier": "ecomexpress", "name": "n\u{0}"}), "name"),
        (
            "PUT",
            "/v1/status-mappings",
            json!({"mappings": [{"carrier": "ecomexpress", "code": "1", "status": "delivered", "description": "\u{0}"}]}),
            "mappings[0].description",
        ),
        (
            "POST",
            "/v1/webhook-endpoints",
            json!({"url": "https://example.com/h", "description": "d\u{0}"}),
            "description",
        ),
        ("POST", "/v1/quotes", with(&|b| b["service"] = json!("Ro\u{0}ute")), "service"),
    ] {
        let r = app.request(method, path, Some(&app.key), Some(&body), &[]).await;
        assert_eq!(refused(&r).0, field, "{method} {path}");
    }
    // The text backslash-u-0000 is six ordinary characters: stored and read back as sent.
    let body = with(&|b| {
        b["reference"] = json!("ref\\u0000");
        b["metadata"] = json!({"note\\u0000": "\\u0000"});
    });
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let s = app.get(&format!("/v1/shipments/{id}")).await.json();
    assert_eq!(s["reference"], "ref\\u0000");
    assert_eq!(s["metadata"]["note\\u0000"], "\\u0000");
}

async fn ecom_pusher(app: &TestApp) -> (String, EcomPusher) {
    let r = app.post("/v1/connections", &json!({"carrier": "ecomexpress", "name": "Ecom pushes"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let b = r.json();
    let id = b["id"].as_str().expect("id").to_owned();
    let creds = &b["generated_credentials"];
    let url = format!("{}{}", app.base, b["inbound_url"].as_str().expect("url"));
    let pusher =
        EcomPusher::new(&url, creds["username"].as_str().expect("user"), creds["password"].as_str().expect("pw"));
    (id, pusher)
}

#[tokio::test]
async fn an_ecom_push_with_a_nul_is_malformed_not_a_retry() {
    let app = spawn_app().await;
    let (id, pusher) = ecom_pusher(&app).await;
    let good = Scan::new("NUL1", "1", "002").body();
    let mut cases: Vec<(Value, String)> = Vec::new();
    let mut b = good.clone();
    b["received_by"] = json!("Ra\u{0}vi");
    cases.push((b, format!("received_by: {NUL_MESSAGE}")));
    let mut b = good.clone();
    b["EDD\u{0}"] = json!("2026-11-25");
    cases.push((b, "field names must not contain the NUL character (U+0000)".to_owned()));
    let mut b = good.clone();
    b["extra"] = json!({"items": ["ok", "\u{0}"]});
    cases.push((b, format!("extra.items[1]: {NUL_MESSAGE}")));
    let mut b = good.clone();
    b["city"] = json!("Vado\u{0}dara");
    cases.push((b, format!("city: {NUL_MESSAGE}")));
    let mut b = good.clone();
    b["datetime"] = json!("-5000-01-01 10:00:00");
    cases.push((b, "datetime must be between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z".to_owned()));
    for (body, reason) in cases {
        let ack = pusher.push_body(&body).await.expect("push");
        assert_eq!(ack.http_status, 400, "{body}: {}", ack.body);
        assert_eq!(ack.body["status"], false);
        assert_eq!(ack.body["reason"], reason.as_str(), "{body}");
        assert_eq!(ack.body["awb"], "NUL1");
        assert_eq!(ack.body["status_update_number"], body["status_update_number"]);
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_pushes WHERE connection_id = $1")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    // Escaped text is not a NUL: this push is stored.
    let mut b = good.clone();
    b["received_by"] = json!("\\u0000");
    let ack = pusher.push_body(&b).await.expect("push");
    assert_eq!((ack.http_status, ack.body["status"].clone()), (200, json!(true)), "{}", ack.body);
}

#[tokio::test]
async fn dates_postgres_cannot_store_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let r = app.post("/v1/webhook-endpoints", &json!({"url": "https://example.com/hooks"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
    let endpoint = r.json()["id"].as_str().expect("id").to_owned();
    for since in ["-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59Z", "+10000-01-01T00:00:00Z"] {
        let r = app.post(&format!("/v1/webhook-endpoints/{endpoint}/replay"), &json!({"since": since})).await;
        assert_eq!(refused(&r).0, "since", "{since}");
    }
    let ok =
        app.post(&format!("/v1/webhook-endpoints/{endpoint}/replay"), &json!({"since": "0001-01-01T00:00:00Z"})).await;
    assert_eq!(ok.status, 202, "{}", String::from_utf8_lossy(&ok.bytes));

    for field in ["scheduled_at", "window_start", "window_end"] {
        let mut body = app.shipment_body(&format!("DATE-{field}"));
        body["stops"][0][field] = json!("-262143-01-01T00:00:00Z");
        let r = app.post("/v1/shipments", &body).await;
        assert_eq!(refused(&r).0, format!("stops[0].{field}"));
    }
    for q in ["created_after=0000-01-01T00:00:00%2B01:00", "created_before=0000-01-01T00:30:00%2B01:00"] {
        let r = app.get(&format!("/v1/shipments?{q}")).await;
        assert_eq!(refused(&r).0, q.split('=').next().unwrap_or_default(), "{q}");
    }
}

#[tokio::test]
async fn json_with_trailing_data_is_refused_naming_the_body() {
    let app = spawn_app().await;
    let doc = app.shipment_body("TRAIL-1").to_string();
    for body in [format!("{doc} {doc}"), format!("{doc}x"), format!("{doc}]")] {
        let r = app
            .http
            .post(format!("{}/v1/shipments", app.base))
            .bearer_auth(&app.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400);
        let p: Value = r.json().await.expect("json");
        assert_eq!(p["code"], "malformed_json");
        assert_eq!(p["errors"][0]["field"], "body", "{p}");
    }
    let r = app
        .http
        .post(format!("{}/v1/shipments", app.base))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body(format!("{doc}\n"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201, "trailing whitespace is fine");
}

#[tokio::test]
async fn error_messages_name_the_field_and_no_rust_type() {
    let app = spawn_app().await;
    let mut body = app.shipment_body("MSG-1");
    body["stops"][0]["address"].as_object_mut().expect("address").remove("city");
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(refused(&r), ("stops[0].address.city".to_owned(), "is required".to_owned()));

    let mut body = app.shipment_body("MSG-2");
    body["stops"][0]["sequence"] = json!(-1);
    let r = app.post("/v1/shipments", &body).await;
    assert_eq!(
        refused(&r),
        ("stops[0].sequence".to_owned(), "must be a whole number from 0 to 4294967295, not -1".to_owned())
    );
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.contains("u32"), "{detail}");

    let mut body = app.shipment_body("MSG-3");
    body["stops"][0]["type"] = json!("teleport");
    let r = app.post("/v1/shipments", &body).await;
    let (field, message) = refused(&r);
    assert_eq!(field, "stops[0].type");
    assert!(message.starts_with("must be one of pickup, delivery"), "{message}");

    // Query-string errors are titled for the query string.
    for q in ["limit=abc", "limit=0", "status=bogus", "colour=red", "cursor=%25%25"] {
        let r = app.get(&format!("/v1/shipments?{q}")).await;
        let p = r.problem(422, "validation_failed");
        assert_eq!(p["title"], "Query string is invalid", "{q}: {p}");
        assert!(!p["detail"].as_str().unwrap_or_default().contains("i64"), "{p}");
    }
    assert_eq!(refused(&app.get("/v1/shipments?limit=abc").await).1, "must be a whole number");
    // A refused header is titled for the header.
    let long_key = "k".repeat(300);
    let r = app
        .request(
            "POST",
            "/v1/shipments",
            Some(&app.key),
            Some(&app.shipment_body("MSG-4")),
            &[("Idempotency-Key", &long_key)],
        )
        .await;
    assert_eq!(refused(&r).0, "Idempotency-Key");
    assert_eq!(r.json()["title"], "Request header is invalid");
    // Unknown enum values in filters: 422 everywhere, never an empty page.
    for path in
        ["/v1/shipments?carrier=nope", "/v1/status-mappings?carrier=nope", "/v1/status-mappings/unmapped?carrier=nope"]
    {
        let (field, message) = refused(&app.get(path).await);
        assert_eq!(field, "carrier", "{path}");
        assert!(message.starts_with("must be one of ") && message.contains("ecourier"), "{message}");
    }
    assert_eq!(app.get("/v1/shipments?carrier=ecourier").await.status, 200);

    // The 413 states the limit that applies.
    let limit = app.state.config.body_limit_bytes;
    let mut big = app.shipment_body("BIG-1");
    big["metadata"] = json!({"pad": "x".repeat(limit)});
    let r = app.post("/v1/shipments", &big).await;
    let p = r.problem(413, "payload_too_large");
    assert!(p["detail"].as_str().unwrap_or_default().contains(&format!("{limit} bytes")), "{p}");
}

/// Send raw bytes and read the answer until the server closes the connection.
async fn raw(app: &TestApp, request: &[u8]) -> (u16, String, Value) {
    let addr = app.base.trim_start_matches("http://");
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    // Read while writing: the server answers and closes before it has read a request
    // that is too large, and an answer left unread when the reset arrives is lost.
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), rd.read_to_end(&mut buf)).await;
        buf
    });
    let _ = wr.write_all(request).await;
    let buf = reader.await.expect("reader");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, head.to_ascii_lowercase(), body)
}

#[tokio::test]
async fn http_layer_errors_are_problems_too() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"GET /v1/carriers HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(), 400, "bad_request"),
        (b"G@T /v1/carriers HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            format!("GET /v1/carriers?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            format!("GET /v1/carriers HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(500_000)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            format!(
                "GET /v1/carriers HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..120).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (got, head, body) = raw(&app, &request).await;
        assert_eq!(got, status, "{head} for {:?}", String::from_utf8_lossy(&request[..request.len().min(60)]));
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert_eq!(body["status"], status);
        assert_eq!(body["code"], code);
        assert!(body["title"].is_string() && body["detail"].is_string() && body["request_id"].is_string(), "{body}");
    }
    // Routing errors and extractor rejections from axum.
    let r = app.request("DELETE", "/v1/carriers", Some(&app.key), None, &[]).await;
    r.problem(405, "method_not_allowed");
    let r = app.request("PUT", "/healthz", None, None, &[]).await;
    r.problem(405, "method_not_allowed");
    app.get("/v1/nothing-here").await.problem(404, "route_not_found");
    let r = app.request("POST", "/v1/inbound/aftership/%FF", None, Some(&json!({})), &[]).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
}

/// Every string leaf, one at a time, replaced by each value of `with`; numbers by each
/// of `numbers`. Returns the mutated documents.
fn mutations(doc: &Value, with: &[Value], numbers: &[Value]) -> Vec<Value> {
    fn leaves(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, bool)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    path.push(json!(k));
                    leaves(x, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push(json!(i));
                    leaves(x, path, out);
                    path.pop();
                }
            }
            Value::String(_) => out.push((path.clone(), true)),
            Value::Number(_) => out.push((path.clone(), false)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    leaves(doc, &mut Vec::new(), &mut found);
    let mut out = Vec::new();
    for (path, is_text) in found {
        for value in if is_text { with } else { numbers } {
            let mut d = doc.clone();
            let mut at = &mut d;
            for step in &path {
                at = match step {
                    Value::String(k) => &mut at[k.as_str()],
                    _ => &mut at[step.as_u64().unwrap_or_default() as usize],
                };
            }
            *at = value.clone();
            out.push(d);
        }
    }
    out
}

/// A bounded corpus of hostile inputs against every operation of the OpenAPI document
/// (so a new operation is covered without editing this test): NUL and odd encodings in
/// path and query, out-of-range numbers and dates, and every string and number of valid
/// bodies replaced in turn. No answer is a 500, and every refusal is a problem.
#[tokio::test]
async fn a_hostile_corpus_gets_no_server_error_anywhere() {
    let app = spawn_app().await;
    let shipment = app.book("CORPUS-1").await["id"].as_str().expect("id").to_owned();
    let endpoint = app.post("/v1/webhook-endpoints", &json!({"url": "https://example.com/h"})).await.json()["id"]
        .as_str()
        .expect("endpoint")
        .to_owned();
    let hostile_path = ["%00", "a%00b", "%FF", "%C0%80", "%5Cu0000", "..%2F..", &"x".repeat(3000)];
    let hostile_query = [
        "%00",
        "%FF",
        "",
        "-1",
        "0",
        "1e400",
        "99999999999999999999",
        "%5Cu0000",
        "-262143-01-01T00:00:00Z",
        "0000-01-01T00:00:00%2B01:00",
        &"q".repeat(5000),
    ];
    let texts =
        [json!("x\u{0}y"), json!("\\u0000"), json!("-262143-01-01T00:00:00Z"), json!("é".repeat(5000)), json!(1)];
    let numbers = [json!(-1), json!(4294967296u64), json!(1e308), json!(-1e308), json!("7"), json!(null)];
    let bodies: Vec<(&str, Value)> = vec![
        ("/v1/shipments", app.shipment_body("CORPUS-2")),
        ("/v1/quotes", app.shipment_body("CORPUS-3")),
        (
            "/v1/connections",
            json!({"carrier": "ecomexpress", "name": "c", "credentials": {"username": "u", "password": "p-long-enough-123"}}),
        ),
        (
            "/v1/webhook-endpoints",
            json!({"url": "https://example.com/h", "description": "d", "event_types": ["shipment.created"]}),
        ),
        (
            "/v1/status-mappings",
            json!({"mappings": [{"carrier": "ecomexpress", "code": "1", "status": "delivered", "description": "d"}]}),
        ),
        ("replay", json!({"since": "2026-01-01T00:00:00Z"})),
    ];

    let doc = serde_json::to_value(shipgate::http::openapi()).expect("document");
    let mut requests = 0usize;
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    let mut check = |method: &str, path: &str, r: &Resp| {
        requests += 1;
        *seen.entry(r.status).or_default() += 1;
        let body = String::from_utf8_lossy(&r.bytes);
        assert!(r.status < 500 || [502, 503, 504].contains(&r.status), "{method} {path} -> {}: {body}", r.status);
        if r.status >= 400 && !path.starts_with("/v1/inbound/ecomexpress") {
            assert_eq!(
                r.header("content-type").as_deref(),
                Some("application/problem+json"),
                "{method} {path}: {body}"
            );
        }
    };
    for (template, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("ops") {
            let method = method.to_uppercase();
            let real = if template.contains("webhook-endpoints") {
                endpoint.clone()
            } else if template.contains("inbound") || template.contains("connections") {
                app.connection_id.clone()
            } else {
                shipment.clone()
            };
            let fill = |v: &str| template.replace("{id}", v).replace("{connection_id}", v);
            // Deleting the real objects would leave the rest of the corpus nothing to reach.
            let mut targets: Vec<String> = if method == "DELETE" { Vec::new() } else { vec![fill(&real)] };
            if template.contains('{') {
                targets.extend(hostile_path.iter().map(|h| fill(h)));
            }
            let queries: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .flat_map(|p| hostile_query.iter().map(move |v| format!("{}={v}", p["name"].as_str().unwrap_or("q"))))
                .collect();
            let body = op.get("requestBody").map(|_| json!({}));
            for target in &targets {
                let r = app.request(&method, target, Some(&app.key), body.as_ref(), &[]).await;
                check(&method, target, &r);
            }
            for q in &queries {
                let target = format!("{}?{q}", fill(&real));
                let r = app.request(&method, &target, Some(&app.key), body.as_ref(), &[]).await;
                check(&method, &target, &r);
            }
            if op.get("requestBody").is_some() {
                let fixed =
                    [json!([]), json!(null), json!("x"), json!({"\u{0}": 1}), json!({"a": [[[[[[[[[[[[1]]]]]]]]]]]]})];
                let valid = bodies
                    .iter()
                    .find(|(p, _)| *p == template.as_str() || (*p == "replay" && template.ends_with("/replay")))
                    .map(|(_, b)| b.clone());
                let mut corpus: Vec<Value> = fixed.to_vec();
                if let Some(v) = &valid {
                    corpus.extend(mutations(v, &texts, &numbers));
                }
                for b in &corpus {
                    let target = fill(&real);
                    let r = app.request(&method, &target, Some(&app.key), Some(b), &[]).await;
                    check(&method, &target, &r);
                }
            }
        }
    }
    eprintln!("{seen:?}");
    assert!(requests > 800, "{requests} requests");
}
