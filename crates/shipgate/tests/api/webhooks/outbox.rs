//! The dispatcher's cursor over (writing transaction, seq): an event committed after a
//! later event was fanned out is still fanned out, once; an open transaction holds later
//! events back and loses none; a transaction with more events than a round stops the
//! cursor inside it. No workers run here: each round is `dispatch_once`.

use super::*;

/// Emit one event in the caller's open transaction.
async fn emit_in(tx: &mut sqlx::PgConnection, app: &TestApp, shipment_id: &str, t: &'static str) -> String {
    let e = NewEvent { event_type: t, data: json!({"shipment": {"id": shipment_id}}) };
    shipgate::store::events::emit(tx, &app.tenant_id, shipment_id, &[e]).await.expect("emit").remove(0)
}

/// How many deliveries the endpoint has for each event (what the API lists).
async fn delivered(app: &TestApp, endpoint_id: &str, events: &[&String]) -> Vec<usize> {
    let all = deliveries(app, endpoint_id, "").await;
    events.iter().map(|e| all.iter().filter(|d| d["event_id"] == e.as_str()).count()).collect()
}

async fn round(app: &TestApp) -> shipgate::webhooks::Round {
    let r = shipgate::webhooks::dispatch_once(&app.state).await.expect("dispatch");
    assert!(!r.skipped, "no other dispatcher runs here");
    r
}

/// Rounds until `n` events were fanned out in all; the events fanned out by each round
/// that fanned out any. (Transaction ids are the whole cluster's: a transaction of
/// another test open for a moment can hold a round back, as any open one would.)
async fn rounds_until(app: &TestApp, n: i64) -> (Vec<i64>, shipgate::webhooks::Round) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut done = Vec::new();
    loop {
        let r = round(app).await;
        if r.events > 0 {
            done.push(r.events);
        }
        if done.iter().sum::<i64>() >= n {
            return (done, r);
        }
        assert!(Instant::now() < deadline, "only {done:?} of {n} events dispatched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_event_committed_after_a_later_one_was_dispatched_is_dispatched_once() {
    let app = spawn_app_with(FAST).await;
    let ep = create_endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let (s1, s2, s3) =
        (shipment(&app, "OUTBOX-1").await, shipment(&app, "OUTBOX-2").await, shipment(&app, "OUTBOX-3").await);

    // B writes first (so its transaction id is the lower one), then A writes an event,
    // then B writes another (numbered after A's) and commits while A stays open.
    let mut b = shipgate::store::begin(&app.db).await.expect("tx b");
    let b1 = emit_in(&mut b, &app, &s2, "shipment.status_changed").await;
    let mut a = shipgate::store::begin(&app.db).await.expect("tx a");
    let a1 = emit_in(&mut a, &app, &s1, "shipment.event_added").await;
    let b2 = emit_in(&mut b, &app, &s2, "shipment.event_added").await;
    b.commit().await.expect("commit b");
    // C begins after A and commits: it must wait for A.
    let c1 = emit(&app, &s3, &["shipment.cancelled"]).await.remove(0);

    // B's events go once every transaction before them has ended; C's waits for A.
    let (_, r) = rounds_until(&app, 2).await;
    for _ in 0..3 {
        assert_eq!(round(&app).await.events, 0, "nothing more while A is open");
    }
    assert_eq!(delivered(&app, ep_id, &[&b1, &b2, &a1, &c1]).await, [1, 1, 0, 0]);
    assert!(r.lag > Duration::ZERO, "C's event waits: {r:?}");
    // A cursor on seq alone would now stand past A's event, which commits only now.
    a.commit().await.expect("commit a");

    let (_, r) = rounds_until(&app, 2).await;
    assert_eq!(r.lag, Duration::ZERO, "nothing waits");
    assert_eq!(round(&app).await.events, 0);
    assert_eq!(delivered(&app, ep_id, &[&b1, &b2, &a1, &c1]).await, [1, 1, 1, 1], "each exactly once");
}

#[tokio::test]
async fn a_rolled_back_event_is_skipped_and_a_big_transaction_spans_rounds() {
    let app = spawn_app_with(FAST).await;
    let ep = create_endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"})).await;
    let ep_id = ep["id"].as_str().expect("id");
    let sid = shipment(&app, "OUTBOX-BIG").await;

    let mut gone = shipgate::store::begin(&app.db).await.expect("tx");
    emit_in(&mut gone, &app, &sid, "shipment.status_changed").await;
    gone.rollback().await.expect("rollback");

    // More events in one transaction than one round fans out (500).
    let types = vec!["shipment.event_added"; 620];
    let ids = emit(&app, &sid, &types).await;
    let (rounds, _) = rounds_until(&app, 620).await;
    assert_eq!(rounds, [500, 120], "a full round, then the rest of the same transaction");
    assert_eq!(round(&app).await.events, 0);
    let n: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(ep_id)
        .fetch_one(&app.db)
        .await
        .expect("count");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(ep_id)
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!((n, total), (ids.len() as i64, ids.len() as i64), "every event once");
}
