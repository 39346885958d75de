//! Shipment workflows shared by the HTTP handlers and (later) the job queue: a
//! booking attempt, applying a carrier's tracking snapshot. Each step calls the
//! carrier with no transaction open, then records the outcome, the exchanges and the
//! history in one transaction.

pub mod booking;
pub mod connections;
pub mod events;
pub mod inbound;
pub mod keepalive;
pub mod refresh;
pub mod registry;
pub mod rotation;
pub mod shipments;
pub mod sinks;
