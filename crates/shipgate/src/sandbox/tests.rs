use serde_json::{Value, json};

use super::*;

/// The simulators on a real port, as `shipgate sandbox` mounts them.
async fn serve(sims: &Simulators) -> String {
    crate::crypto::install_tls_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = sims.mount(axum::Router::new());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn post(url: String, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// e-Courier: Login as the demo account; the UserGUID.
async fn ecourier_login(base: &str) -> String {
    let account = &ecourier::EcourierSimConfig::default().accounts[0];
    let (status, answer) = post(
        format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/Login"),
        &[],
        json!({"website": account.website, "username": account.username, "password": account.password}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["UserGUID"].as_str().expect("UserGUID").to_owned()
}

async fn ecourier_get(base: &str, guid: &str, number: &str) -> (u16, Value) {
    post(
        format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/GetJsonOrder"),
        &[("UserGUID", guid)],
        json!({"OrderNumber": number}),
    )
    .await
}

/// Something in every simulator: an e-Courier order (the reference's SaveOrder example
/// for the demo customer), an AfterShip tracking, an eCMR shipment, an ecomdash item.
async fn fill(base: &str) -> String {
    let guid = ecourier_login(base).await;
    let mut order: Value =
        serde_json::from_str(include_str!("../../../../contract/fixtures/ecourier/saveorder.request.json"))
            .expect("fixture");
    order["Order"]["CustomerCode"] = json!(ecourier::EcourierSimConfig::default().accounts[0].customer_code);
    order["Order"]["OrderNumber"] = json!("SG-RESTART-1");
    let (status, answer) =
        post(format!("{base}{ECOURIER_MOUNT}/software/xml/ecJsonPost.asmx/SaveOrder"), &[("UserGUID", &guid)], order)
            .await;
    assert_eq!(status, 200, "{answer}");

    let key = aftership::AftershipSimConfig::default().api_keys[0].clone();
    let (status, answer) = post(
        format!("{base}{AFTERSHIP_MOUNT}{AFTERSHIP_API}/trackings"),
        &[("as-api-key", &key)],
        json!({"tracking": {"tracking_number": "RESTART1234", "slug": "dhl"}}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");

    let org = ecmr::EcmrSimConfig::default().organizations[0].clone();
    let (_, token) = post(
        format!("{base}{ECMR_MOUNT}/api/token"),
        &[],
        json!({"client_id": org.organization_id, "code": org.api_token}),
    )
    .await;
    let bearer = format!("Bearer {}", token["access_token"].as_str().expect("access_token"));
    let place = json!({"address": "Main 1", "postal_code": "1011 AB", "city": "Amsterdam", "country": "NL"});
    let party = json!({"name": "Sender BV", "address": "Main 1", "postal_code": "1011 AB", "city": "Amsterdam", "country": "NL"});
    let (status, answer) = post(
        format!("{base}{ECMR_MOUNT}/api/shipments"),
        &[("Authorization", &bearer)],
        json!({"shipment": {"reference": "SO-RESTART", "consignor": party, "consignee": party,
            "taking_over": {"place": place, "date": "2026-11-23T08:00:00+01:00"}, "delivery": {"place": place},
            "goods": [{"packages": 1, "description": "Tiles"}]}}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");

    let ed = ecomdash::EcomdashSimConfig::default();
    let (status, answer) = post(
        format!("{base}{ECOMDASH_MOUNT}/api/Shipments/submitTrackingInfo"),
        &[("Ocp-Apim-Subscription-Key", &ed.subscription_keys[0]), ("ecd-subscription-key", &ed.integration_keys[0])],
        json!([{"ShipmentId": 28, "TrackingNumber": "RESTART1234"}]),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    guid
}

/// Issue 9: after a restart, the sandbox's old demo shipments failed to refresh with
/// "Order Not Found": the database kept them, the simulators did not.
#[tokio::test]
async fn the_simulators_state_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("shipgate-sims-{}", uuid::Uuid::new_v4().simple()));
    let before = Simulators::new();
    let base = serve(&before).await;
    let session = fill(&base).await;
    let mut saved = SimStateDir::new(&dir);
    let now = std::time::Instant::now();
    assert!(saved.save_due(&before, now).expect("saved").is_empty(), "not before things are quiet");
    let later = now + SAVE_QUIET;
    assert_eq!(saved.save_due(&before, later).expect("saved"), SIM_CARRIERS, "everything changed");
    assert!(saved.save_due(&before, later).expect("saved").is_empty(), "nothing changed since");
    // Reads change nothing.
    let (status, _) = ecourier_get(&base, &session, "SG-RESTART-1").await;
    assert_eq!(status, 200);
    let much_later = later + SAVE_MAX_DELAY;
    assert!(saved.save_due(&before, much_later).expect("saved").is_empty(), "a read is no change");
    for carrier in SIM_CARRIERS {
        assert!(dir.join(format!("{carrier}.json")).is_file(), "{carrier}");
        assert!(!dir.join(format!("{carrier}.json.tmp")).exists(), "{carrier}: the temp file was renamed");
    }

    // A new process: fresh simulators, the same data directory.
    let after = Simulators::new();
    let base = serve(&after).await;
    let fresh = ecourier_login(&base).await;
    let (status, answer) = ecourier_get(&base, &fresh, "SG-RESTART-1").await;
    assert_eq!(status, 500, "not there before the import: {answer}");
    let mut loaded = SimStateDir::new(&dir);
    let report = loaded.load(&after);
    assert_eq!(report.len(), 4, "{report:?}");
    assert!(report.iter().all(|l| l.contains("restored")), "{report:?}");
    // The order is found again, with the session the gateway had cached before.
    let (status, answer) = ecourier_get(&base, &session, "SG-RESTART-1").await;
    assert_eq!(status, 200, "the order is found again: {answer}");
    assert_eq!(answer["Order"]["@OrderNumber"], "SG-RESTART-1", "{answer}");
    assert_eq!(after.aftership.tracking_id("dhl", "RESTART1234"), before.aftership.tracking_id("dhl", "RESTART1234"));
    assert!(after.ecmr.shipment_by_reference("org-demo", "SO-RESTART").is_some());
    assert_eq!(after.ecomdash.submitted(), before.ecomdash.submitted());
    // The login on `after` above happened before the import, which dropped its session:
    // what is on disk is what was loaded.
    let much_later = std::time::Instant::now() + SAVE_MAX_DELAY;
    assert!(loaded.save_due(&after, much_later).expect("saved").is_empty(), "what was loaded is on disk");

    // A change through the control API is saved; a file that cannot be imported is put
    // aside, never overwritten.
    let advanced = reqwest::Client::new()
        .post(format!("{base}{ECOURIER_MOUNT}/_sim/orders/SG-RESTART-1/advance"))
        .send()
        .await
        .expect("advance");
    assert_eq!(advanced.status(), 200);
    let much_later = std::time::Instant::now() + SAVE_MAX_DELAY;
    assert_eq!(loaded.save_due(&after, much_later).expect("saved"), ["ecourier"]);
    assert_eq!(loaded.save_all(&after).expect("saved"), SIM_CARRIERS, "at shutdown: everything");
    std::fs::write(dir.join("ecmr.json"), "{\"version\": 99}").expect("write");
    let report = SimStateDir::new(&dir).load(&Simulators::new());
    assert!(report.iter().any(|l| l.starts_with("ecmr:") && l.contains("could not be imported")), "{report:?}");
    assert!(dir.join("ecmr.json.unreadable").is_file());
    assert!(!dir.join("ecmr.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
