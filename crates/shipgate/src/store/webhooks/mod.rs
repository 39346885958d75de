//! Webhook endpoints, deliveries (the delivery queue) and attempts.
//!
//! The queue follows docs/architecture.md rule 6 (svix/hook0 workers): due rows are
//! claimed with `FOR UPDATE SKIP LOCKED` in order of due time; a claim pushes
//! `next_attempt_at` to the end of the lease and sets a new claim token, and results
//! are recorded only where the token still matches.
//!
//! `endpoints`: the endpoints and their sealed secrets; `queue`: fan-out, claims and
//! outcomes (the worker's side); `deliveries`: what the API lists, retries and replays.

mod deliveries;
mod endpoints;
mod queue;

pub use deliveries::*;
pub use endpoints::*;
pub use queue::*;
