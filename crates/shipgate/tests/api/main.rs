//! Black-box tests: a real server on port 0, a real Postgres database per test, the
//! e-Courier simulator mounted on the same server, assertions on HTTP status and body.

mod aftership;
mod booking;
mod breaker;
mod carrier_sql;
mod cli;
mod coalesced_reads;
mod connections;
mod console;
mod documents;
mod ecmr;
mod ecourier_contract;
mod errors;
mod group_commit;
mod harness;
mod helpers;
mod idempotency;
mod inbound;
mod input;
mod inserted_row;
mod jobs;
mod ops;
mod reconcile;
mod refresh;
mod retention;
mod rotation;
mod security;
mod shipments;
mod sinks;
mod tenancy;
mod tokens;
mod tracking;
mod transactions;
mod warm;
mod webhooks;
