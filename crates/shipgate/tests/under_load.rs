//! The AfterShip rate limit on a loaded machine (issue 8). A test target of its own:
//! cargo runs test binaries one after another, so the busy threads here never slow the
//! API tests (which run in parallel inside their own binary) and vice versa.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

// The API tests' harness: a real server, a real database, the simulators mounted.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::spawn_app;

fn tracking(con: &str, number: &str) -> serde_json::Value {
    json!({
        "connection_id": con, "tracking_number": number, "service": "dhl", "reference": format!("ORD-{number}"),
        "stops": [{"sequence": 1, "type": "delivery", "name": "Bryan Moore",
                   "address": {"line1": "2253 Orange Blossom Trail", "city": "Orlando", "country": "US"}}]
    })
}

/// Threads that keep every core busy until dropped: a loaded machine, where a task may
/// run long after the rate limiter let its call go.
struct CpuLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl CpuLoad {
    fn start() -> CpuLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let threads = (0..cores * 8)
            .map(|i| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = i as u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        }
                    }
                    x
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Issue 8: with the machine busy, 40 concurrent registrations once put 11 calls into
/// one second at AfterShip (10 allowed). The simulator counts arrivals over every
/// sliding one-second window, as the carrier does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_rate_limit_holds_under_cpu_load() {
    let app = spawn_app().await;
    let con = app.create_aftership_connection().await;
    let load = CpuLoad::start();
    let mut tasks = Vec::new();
    for i in 0..48 {
        let (http, base, key, body) =
            (app.http.clone(), app.base.clone(), app.key.clone(), tracking(&con, &format!("LOAD{i:06}")));
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/v1/shipments"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("join").expect("request"));
    }
    drop(load);
    // 201 registered; 202 kept pending when a call waited longer than the limiter's
    // max_wait on this loaded machine (booked later by its job): never a refusal.
    assert!(statuses.iter().all(|s| *s == 201 || *s == 202), "{statuses:?}");
    let registered = statuses.iter().filter(|s| **s == 201).count();
    let stats = app.aftership.stats();
    println!(
        "48 concurrent registrations under CPU load ({registered} registered at once) -> at most {} calls in one \
         second, {} answered 429",
        stats.max_calls_per_second, stats.rate_limited
    );
    let creates = stats.calls.get("create").copied().unwrap_or(0);
    assert!(creates >= 20 && creates as usize >= registered, "the limit was exercised: {stats:?}");
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert!(stats.max_calls_per_second <= 10, "{stats:?}");
}
