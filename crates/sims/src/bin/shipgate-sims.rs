//! `shipgate-sims [ADDR]`: every carrier simulator in its own process (default
//! 127.0.0.1:8099), so benchmarks and contract checks measure and drive them outside the
//! gateway. Each is mounted under `/<carrier>`; its control API is under
//! `/<carrier>/_sim/…`.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8099".to_owned());
    let router = axum::Router::new()
        .nest("/ecourier", sims::ecourier::standalone_router())
        .nest("/aftership", sims::aftership::standalone_router())
        .nest("/ecmr", sims::ecmr::standalone_router())
        .nest("/ecomdash", sims::ecomdash::standalone_router());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("shipgate-sims listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await
}
