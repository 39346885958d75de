//! Ecom Express push load and reliability driver for `bench/` (QUALITY P2, reliability
//! 1 and 2). Uses the Ecom Express pusher written from the seed (`sims::ecomexpress`).
//!
//! ```text
//! ecom_push rate  URL USER PASS RATE SECS [AWBS]       open-loop pushes at RATE/s; prints p50/p99
//! ecom_push burst URL USER PASS COUNT CONC ACKED_FILE  pushes COUNT distinct scans, resending every
//!                                                      one not acked true until it is; writes the
//!                                                      acked keys (awb,status_update_number)
//! ```
//! Latency in `rate` mode is measured from each push's scheduled send time, so a stall
//! of the gateway shows in the percentiles instead of slowing the sender down
//! (no coordinated omission).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sims::ecomexpress::{EcomPusher, Scan};

/// A push slower than this counts in `rate` mode's slow windows (P2's bar, docs/quality.md).
const STALL_MS: f64 = 25.0;

const CODES: [&str; 5] = ["001", "0011", "002", "006", "999"];

fn arg(args: &[String], i: usize, name: &str) -> String {
    args.get(i).cloned().unwrap_or_else(|| {
        eprintln!("missing {name}; see the doc comment of examples/ecom_push.rs");
        std::process::exit(2)
    })
}

fn num<T: std::str::FromStr>(s: &str, name: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("{name} must be a number, got {s:?}");
        std::process::exit(2)
    })
}

/// A scan with every seed field filled, as Ecom sends it (seed 003's payload).
fn scan(awb: String, status_update_number: String, code: &str) -> Scan {
    Scan::new(awb.clone(), status_update_number, code)
        .status("scan")
        .reason_code(format!("{code} - scan"))
        .location("JRD")
        .employee("Bench Pusher")
        .order_number(format!("ORD-{awb}"))
        .city("Vadodara")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    shipgate::crypto::install_tls_provider();
    let args: Vec<String> = std::env::args().collect();
    let mode = arg(&args, 1, "mode");
    // Many pushes in flight: a pool that keeps their connections, and a timeout long enough
    // for a gateway stalled under load to answer rather than be counted as lost.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build()
        .expect("an HTTP client with the crypto provider installed");
    let pusher = EcomPusher::with_client(client, arg(&args, 2, "URL"), arg(&args, 3, "USER"), arg(&args, 4, "PASS"));
    match mode.as_str() {
        "rate" => {
            let rate: f64 = num(&arg(&args, 5, "RATE"), "RATE");
            let secs: f64 = num(&arg(&args, 6, "SECS"), "SECS");
            let awbs: u64 = args.get(7).map(|s| num(s, "AWBS")).unwrap_or(5000);
            rate_mode(pusher, rate, secs, awbs).await
        }
        "burst" => {
            let count: u64 = num(&arg(&args, 5, "COUNT"), "COUNT");
            let conc: usize = num(&arg(&args, 6, "CONC"), "CONC");
            let out = arg(&args, 7, "ACKED_FILE");
            burst_mode(pusher, count, conc, &out).await
        }
        other => {
            eprintln!("unknown mode {other:?}: rate | burst");
            std::process::exit(2)
        }
    }
}

async fn rate_mode(pusher: EcomPusher, rate: f64, secs: f64, awbs: u64) {
    let total = (rate * secs) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let run = std::process::id() as u64 * 1_000_000_000;
    let start = Instant::now();
    let started_at = chrono::Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut all = Vec::with_capacity(total as usize);
    // At most 200 pushes in flight (a carrier's sender has a bounded pool too, and the
    // gateway answers 429 past `max_connections_per_client`, 256 by default): a push
    // waiting for a free slot still counts its latency from its scheduled time.
    let slots = Arc::new(tokio::sync::Semaphore::new(200));
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (p, slots) = (pusher.clone(), slots.clone());
        let scan = scan(format!("BENCH-{}", i % awbs), format!("{}", run + i), CODES[(i % 5) as usize]);
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore is never closed");
            // A push not acknowledged true is counted, and said why on stderr.
            let ok = match p.push(&scan).await {
                Ok(a) if a.accepted() => true,
                Ok(a) => {
                    eprintln!(
                        "not acked true: {} {}: HTTP {} {}",
                        scan.awb, scan.status_update_number, a.http_status, a.body
                    );
                    false
                }
                Err(e) => {
                    eprintln!("not acked true: {} {}: {e:#}", scan.awb, scan.status_update_number);
                    false
                }
            };
            (i, due.elapsed().as_secs_f64() * 1e3, ok)
        });
        while let Some(done) = tasks.try_join_next() {
            all.push(done);
        }
    }
    let mut lat = Vec::with_capacity(total as usize);
    let mut failed = 0u64;
    while let Some(r) = tasks.join_next().await {
        all.push(r);
    }
    // Where the slow pushes were: each 100 ms window of scheduled send times holding a
    // push slower than STALL_MS, with its wall-clock time, so a stall can be matched
    // against the database's log (checkpoints, autovacuum) of the same run. On stderr:
    // stdout keeps its one line for the scripts that read it.
    let mut windows: std::collections::BTreeMap<u64, (u64, f64)> = std::collections::BTreeMap::new();
    for (i, ms, ok) in all.into_iter().flatten() {
        lat.push(ms);
        failed += u64::from(!ok);
        if ms > STALL_MS {
            let w = windows.entry((interval.mul_f64(i as f64).as_millis() / 100) as u64).or_default();
            *w = (w.0 + 1, w.1.max(ms));
        }
    }
    for (w, (n, max)) in &windows {
        let at = started_at + chrono::Duration::milliseconds(*w as i64 * 100);
        eprintln!(
            "slow window {}: {n} pushes over {STALL_MS} ms, max {max:.0} ms",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "rate {rate:.0}/s for {secs:.0}s: {} pushes measured, {failed} not acked true, achieved {:.0}/s, \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
}

async fn burst_mode(pusher: EcomPusher, count: u64, conc: usize, out: &str) {
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let stats = Arc::new(std::sync::Mutex::new((0u64, 0u64, 0u64))); // (acked, refused/5xx, connection errors)
    let acked_keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let run = std::process::id();
    for i in 0..count {
        let (p, sem, stats, keys) = (pusher.clone(), sem.clone(), stats.clone(), acked_keys.clone());
        tasks.spawn(async move {
            let scan = scan(format!("R-{run}-{}", i / 5), format!("{}", i), CODES[(i % 5) as usize]);
            // Resend until acknowledged true (what Ecom does with a scan it could not deliver).
            loop {
                let permit = sem.acquire().await.expect("semaphore");
                let r = p.push(&scan).await;
                drop(permit);
                match r {
                    Ok(a) if a.accepted() => {
                        if let Ok(mut s) = stats.lock() {
                            s.0 += 1;
                        }
                        if let Ok(mut k) = keys.lock() {
                            k.push(format!("{},{}", scan.awb, scan.status_update_number));
                        }
                        return;
                    }
                    Ok(a) => {
                        if a.body["status"] == serde_json::json!(true) {
                            eprintln!("status:true with HTTP {}: {}", a.http_status, a.body);
                        }
                        if let Ok(mut s) = stats.lock() {
                            s.1 += 1;
                        }
                    }
                    Err(_) => {
                        if let Ok(mut s) = stats.lock() {
                            s.2 += 1;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    let mut last_print = Instant::now();
    while tasks.join_next().await.is_some() {
        if last_print.elapsed() > Duration::from_secs(2) {
            last_print = Instant::now();
            if let Ok(s) = stats.lock() {
                eprintln!(
                    "  {:>5.1}s acked {} / {count}, refused {} , connection errors {}",
                    started.elapsed().as_secs_f64(),
                    s.0,
                    s.1,
                    s.2
                );
            }
        }
    }
    let (acked, refused, errors) = stats.lock().map(|s| *s).unwrap_or_default();
    let keys = acked_keys.lock().map(|k| k.clone()).unwrap_or_default();
    let mut f = std::fs::File::create(out).expect("acked file");
    for k in &keys {
        let _ = writeln!(f, "{k}");
    }
    println!(
        "burst: {count} scans, {acked} acked true after {:.1}s, {refused} answers not true (retried), \
         {errors} connection errors (retried); acked keys in {out}",
        started.elapsed().as_secs_f64()
    );
}
