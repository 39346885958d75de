//! What the service layer answers: each resource's outward shape, the one the API
//! returns and every outbound event carries, built from the store's rows here (below
//! `http`, so events are built without an HTTP type: issue 11's import circle). The
//! front ends serialize them as they are; the OpenAPI document names them as the API
//! always has (`ShipmentOut`, `ConnectionOut`, ...).
//!
//! Carrier-registry types the answers (and the requests) name are re-exported here, so
//! a front end reaches them through the service layer, never through `carriers`.

pub mod connection;
pub mod document;
pub mod event;
pub mod inbound;
pub mod job;
pub mod json_text;
pub mod mapping;
pub mod quote;
pub mod reconciliation;
pub mod schema;
pub mod shipment;
pub mod webhook;

pub use crate::carriers::{CarrierInfo, Channel, CompleteReason, Location, Quote, ShipmentSinks};
pub use connection::Connection;
pub use document::{Document, DocumentContent};
pub use event::{Event, EventData};
pub use inbound::{InboundPush, InboundRefusal};
pub use job::Job;
pub use mapping::{StatusMapping, Unmapped};
pub use quote::{Estimate, EstimateResult, QuoteAnswer};
pub use reconciliation::Reconciliation;
pub use shipment::{Booking, BookingError, CarrierExchange, HistoryEntry, LastEvent, Shipment, TrackingEvent};
pub use webhook::{WebhookAttempt, WebhookDelivery, WebhookEndpoint};
