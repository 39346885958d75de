//! ecmr simulator: to be written from the seed and docs/carriers (see crate docs).

/// The simulator's routes for a standalone process (carrier API and `/_sim` control API).
pub fn standalone_router() -> axum::Router {
    axum::Router::new()
}
