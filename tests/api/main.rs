//! Black-box tests: a real server on port 0, a real Postgres database per test, the
//! e-Courier simulator mounted on the same server, assertions on HTTP status and body.

mod booking;
mod connections;
mod errors;
mod helpers;
mod idempotency;
mod ops;
mod refresh;
mod shipments;
mod sinks;
mod tenancy;
mod tokens;
