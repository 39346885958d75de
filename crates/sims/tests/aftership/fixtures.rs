//! The seed's requests and answers as golden fixtures.

use super::*;

fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contract/fixtures/aftership").join(kind);
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test]
async fn the_seeds_requests_are_accepted_as_the_seed_says() {
    let reqs = fixtures("requests");
    assert!(reqs.len() >= 10);
    for (name, f) in reqs {
        let api = api().await;
        let id = api.create_id("EM000000000CN").await;
        api.sim.advance(&id).unwrap();
        if f["expect"]["after"] == "expire" {
            api.sim.expire(&id).unwrap();
        }
        let path = f["path"].as_str().unwrap().replace("{id}", &id);
        let path = path.strip_prefix("/tracking/2024-04").unwrap();
        let method = Method::from_bytes(f["method"].as_str().unwrap().as_bytes()).unwrap();
        let body = Some(f["body"].clone()).filter(|b| !b.is_null());
        let a = api.call(method, path, body).await;
        assert_eq!(a.status, f["expect"]["status"].as_u64().unwrap() as u16, "{name}: {}", a.body);
        for k in ["tag", "subtag"] {
            if let Some(want) = f["expect"][k].as_str() {
                assert_eq!(a.tracking()[k], want, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn the_answer_fixtures_have_todays_shapes() {
    // Fixtures are captured from the simulator (contract/aftership/run.sh --write-fixtures)
    // and judged by the SDK there; here they must still match what the simulator answers.
    let api = api().await;
    let id = api.create_id("RA123456789CN").await;
    let live = api.call(Method::GET, &format!("/trackings/{id}"), None).await;
    let tracking_keys = Answer::keys(live.tracking());
    api.sim.expire(&id).unwrap();
    let retrack_keys = Answer::keys(api.call(Method::POST, &format!("/trackings/{id}/retrack"), None).await.tracking());
    let delete_keys = Answer::keys(api.call(Method::DELETE, &format!("/trackings/{id}"), None).await.tracking());
    let answers = fixtures("answers");
    assert!(answers.len() >= 15);
    for (name, f) in answers {
        let body = &f["body"];
        let op = f["op"].as_str().unwrap_or("none");
        let tracking = match op {
            "webhook" => &body["msg"],
            _ => &body["data"]["tracking"],
        };
        match op {
            _ if f["status"].as_u64().is_some_and(|s| s >= 300) => {
                assert_eq!(Answer::keys(&body["meta"]), ["code", "message", "type"].map(String::from).into(), "{name}")
            }
            "retrack_tracking_by_id" => assert_eq!(Answer::keys(tracking), retrack_keys, "{name}"),
            "delete_tracking_by_id" => assert_eq!(Answer::keys(tracking), delete_keys, "{name}"),
            _ if tracking.is_object() => assert_eq!(Answer::keys(tracking), tracking_keys, "{name}"),
            _ => {}
        }
    }
}
