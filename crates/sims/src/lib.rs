//! Carrier simulators, written from the carriers' own documents (the seeds under
//! `docs/carriers/` and their sources), never from the gateway's adapters: where an
//! adapter misreads a contract, a simulator written from the same misreading would
//! agree with it and prove nothing.
//!
//! Each simulator is an axum [`Router`](axum::Router) that plays the carrier's side of
//! its contract strictly (auth, body shape, the carrier's own error answers), keeps its
//! state in memory, and offers knobs for tests (latency, faults for the next N calls,
//! token expiry, 429 bursts) both as Rust methods and as a small HTTP control API under
//! `/_sim/…` of its mount point. They serve the gateway's tests, `shipgate sandbox`, the
//! benchmarks (run out of process by the `shipgate-sims` binary) and the contract checks
//! that drive them with carriers' own SDKs.

pub mod common;

pub mod aftership;
pub mod ecmr;
pub mod ecomdash;
pub mod ecomexpress;
pub mod ecourier;
