//! Ecom Express pusher: plays Ecom Express's side of the status push (seed 003): it
//! POSTs scans to a customer endpoint with Basic Auth and reads the acknowledgement.
//! To be written from the seed (see crate docs).
