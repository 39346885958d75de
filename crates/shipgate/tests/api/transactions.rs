//! A transaction whose start is cancelled in flight (a client that hung up, a task
//! aborted mid-request) must not leave its connection inside a transaction: the next
//! user of that connection would write into it, nothing it wrote would ever be
//! committed, and the open transaction would hold back every snapshot (the webhook
//! dispatcher only fans out events below the oldest one; `store::begin`).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use crate::helpers::spawn_app;

/// Poll a future once and drop it: what a cancelled request does to the statement it
/// is waiting on. True when it was still waiting (a start that had already finished is
/// dropped as a whole transaction, which sqlx rolls back).
async fn poll_once_then_drop<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await
}

#[tokio::test]
async fn a_transaction_start_cancelled_in_flight_leaves_the_next_writer_on_its_connection_committed() {
    let app = spawn_app().await;
    // One connection, configured as the gateway's pool is (`store::connect`), so that the
    // writer below is handed the very connection the cancelled start was using.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with((*app.db.connect_options()).clone())
        .await
        .expect("pool");
    sqlx::query("CREATE TABLE cancel_probe (n int)").execute(&pool).await.expect("table");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&pool).await.expect("pid");
    let mut cancelled = 0;
    for n in 0..20_i64 {
        cancelled += i32::from(poll_once_then_drop(shipgate::store::begin(&pool)).await);
        // The next user of the connection writes outside any transaction of its own...
        sqlx::query("INSERT INTO cancel_probe VALUES ($1)").bind(n as i32).execute(&pool).await.expect("insert");
        // ...and another session sees the row: it was committed.
        let seen: i64 =
            sqlx::query_scalar("SELECT count(*) FROM cancel_probe").fetch_one(&app.db).await.expect("count");
        assert_eq!(seen, n + 1, "the write after cancelled start {n} was not committed");
    }
    assert!(cancelled >= 10, "only {cancelled} of 20 starts were cancelled in flight");
    // The connection itself ends outside any transaction. The last cancelled start may
    // still be running in its own task (it waits its turn for the one connection, begins,
    // and rolls back as nobody takes it): one more statement through the pool queues
    // behind it, and the backend then settles `idle` (it would stay `idle in transaction`
    // forever if a start were lost).
    sqlx::query("SELECT 1").execute(&pool).await.expect("after");
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_optional(&app.db)
            .await
            .expect("activity");
        if state.as_deref() == Some("idle") {
            break;
        }
        assert!(std::time::Instant::now() < until, "the connection stays {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
