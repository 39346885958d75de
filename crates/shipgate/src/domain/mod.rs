//! The gateway's own vocabulary. Nothing here knows HTTP, SQL or any carrier.

pub mod document;
pub mod exchange;
pub mod job;
pub mod limits;
pub mod plan;
pub mod shipment;
pub mod status;
pub mod time;

pub use document::{Attachment, ProofOfDelivery, ProofReport, SignatureRef};
pub use exchange::{DocumentLink, Exchange};
pub use plan::*;
pub use shipment::*;
pub use status::*;
