//! Carrier simulators, written from the carriers' own documents (`docs/carriers/`, the
//! seeds), never from the gateway's adapters: where an adapter misreads a contract, a
//! simulator written from the same misreading would agree with it and prove nothing.

pub mod ecmr;
pub mod ecomdash;
pub mod ecomexpress;
