//! The harness itself: every test's database is dropped when the test ends, so
//! `cargo test` leaves no databases behind (issue 9 "Operability").

use std::sync::{Arc, Mutex};

use crate::helpers::spawn_app;

async fn exists(db: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(db)
        .await
        .expect("pg_database")
}

#[tokio::test]
async fn a_test_database_is_dropped_when_its_test_ends_even_by_a_panic() {
    let observer = spawn_app().await;

    let name = {
        let app = spawn_app().await;
        app.book("HARNESS-1").await;
        assert!(exists(&observer.db, &app.database.name).await);
        app.database.name.clone()
    };
    assert!(!exists(&observer.db, &name).await, "{name} is gone once its app is dropped");

    // A test that panics with its server running and connections open.
    let slot = Arc::new(Mutex::new(None));
    let seen = slot.clone();
    let outcome = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let app = spawn_app().await;
            app.book("HARNESS-2").await;
            *seen.lock().expect("slot") = Some(app.database.name.clone());
            panic!("this test fails on purpose");
        })
    })
    .join();
    assert!(outcome.is_err(), "the inner test panicked");
    let name = slot.lock().expect("slot").take().expect("the inner test ran");
    assert!(!exists(&observer.db, &name).await, "{name} is gone after its test panicked");
}
