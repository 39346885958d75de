//! The most-recently-used connections of the short request paths (`store::warm`): a
//! connection given back cleanly serves the next request, one abandoned mid-statement
//! never does, and these paths never hold more than half the pool.

use std::time::Duration;

use shipgate::store::warm::Warm;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::spawn_app;

async fn backend_pid(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await.expect("pid")
}

async fn small_pool(app: &crate::helpers::TestApp, max: u32) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_millis(300))
        .test_before_acquire(false)
        .connect_with((*app.db.connect_options()).clone())
        .await
        .expect("pool")
}

#[tokio::test]
async fn a_connection_given_back_cleanly_serves_the_next_request() {
    let app = spawn_app().await;
    let pool = small_pool(&app, 8).await;
    // Open several connections, so that a first-in-first-out pool would rotate.
    let held: Vec<_> = futures::future::join_all((0..4).map(|_| pool.acquire())).await;
    drop(held);
    let warm = Warm::new(pool.clone());
    let mut conn = warm.acquire().await.expect("acquire");
    let first = backend_pid(&mut conn).await;
    conn.release();
    for _ in 0..20 {
        let pid = warm.with(async |c| Ok::<_, sqlx::Error>(backend_pid(c).await)).await.expect("with");
        assert_eq!(pid, first, "the most recent connection is handed out again");
    }
    assert_eq!(warm.parked(), 1);
    // Work that fails does not park its connection.
    let failed = warm.with(async |c| sqlx::query("SELECT 1 / 0").execute(c).await).await;
    assert!(failed.is_err());
    assert_eq!(warm.parked(), 0, "a connection whose work failed went back to sqlx's check");
}

#[tokio::test]
async fn a_connection_abandoned_mid_statement_is_not_handed_out_again() {
    let app = spawn_app().await;
    let pool = small_pool(&app, 8).await;
    let warm = Warm::new(pool.clone());
    let mut conn = warm.acquire().await.expect("acquire");
    let abandoned = backend_pid(&mut conn).await;
    // A request cancelled while its statement runs (the client went away).
    let cut = tokio::time::timeout(
        Duration::from_millis(100),
        sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(2)").fetch_one(&mut *conn),
    )
    .await;
    assert!(cut.is_err(), "the statement was still running");
    drop(conn);
    assert_eq!(warm.parked(), 0, "only a clean release parks a connection");
    // The next user gets a connection that answers its own statement, not the old one's.
    let mut next = warm.acquire().await.expect("acquire");
    assert_ne!(backend_pid(&mut next).await, abandoned);
    let v: i32 = sqlx::query_scalar("SELECT 42").fetch_one(&mut *next).await.expect("query");
    assert_eq!(v, 42);
    next.release();
}

#[tokio::test]
async fn the_short_paths_hold_at_most_half_the_pool_and_wait_their_turn() {
    let app = spawn_app().await;
    let pool = small_pool(&app, 4).await;
    let warm = Warm::new(pool.clone());
    let a = warm.acquire().await.expect("first");
    let b = warm.acquire().await.expect("second");
    // A third waits for a turn and gives up after the pool's acquire timeout ...
    let third = warm.acquire().await;
    assert!(matches!(third, Err(sqlx::Error::PoolTimedOut)), "{:?}", third.err());
    // ... while the rest of the pool still serves everyone else.
    let others: Vec<_> = futures::future::join_all((0..2).map(|_| pool.acquire())).await;
    assert!(others.iter().all(Result::is_ok), "the other half of the pool stays available");
    drop(others);
    // A turn given back (cleanly or not) lets the next one in.
    a.release();
    drop(b);
    let mut c = warm.acquire().await.expect("a turn after release");
    let v: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *c).await.expect("query");
    assert_eq!(v, 1);
    c.release();
}

#[tokio::test]
async fn parked_connections_go_back_to_the_pool_when_unused() {
    let app = spawn_app().await;
    let pool = small_pool(&app, 8).await;
    let warm = Warm::new(pool.clone());
    let conn = warm.acquire().await.expect("acquire");
    conn.release();
    assert_eq!(warm.parked(), 1);
    tokio::time::sleep(shipgate::store::warm::PARK_FOR * 3).await;
    assert_eq!(warm.parked(), 0, "the sweep gave it back");
    // The pool got it back (idle, after sqlx's own check).
    for _ in 0..50 {
        if pool.num_idle() >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the connection did not come back to the pool: {} idle of {}", pool.num_idle(), pool.size());
}
