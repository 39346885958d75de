//! The gateway's own vocabulary. Nothing here knows HTTP, SQL or any carrier.

pub mod exchange;
pub mod limits;
pub mod shipment;
pub mod status;
pub mod time;

pub use exchange::{DocumentLink, Exchange};
pub use shipment::*;
pub use status::*;
