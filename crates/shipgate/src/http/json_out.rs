//! A JSON answer written into a buffer sized for it.
//!
//! `axum::Json` writes into a 128-byte `BytesMut` that grows as it goes, through
//! `bytes`' `Writer`, whose every small write (each key and string of the answer) costs
//! more than the copy it makes. A list of 100 shipments is about 150 kB; measured with
//! callgrind (`bench/p4_cpu.sh CALLGRIND=1 CALLGRIND_READ=list`), the writer's growth and
//! per-write work were a sixth of the list's instructions. A `Vec` with room for the
//! whole answer takes each write as a plain copy.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// `value` as `application/json`, written into `capacity` bytes to start with.
pub struct JsonOut<T> {
    value: T,
    capacity: usize,
}

impl<T: Serialize> JsonOut<T> {
    /// For an answer of about `capacity` bytes: more costs one reallocation, less
    /// wastes nothing but the unused room until the answer is sent.
    pub fn sized(value: T, capacity: usize) -> Self {
        JsonOut { value, capacity }
    }
}

impl<T: Serialize> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(self.capacity);
        match serde_json::to_writer(&mut buf, &self.value) {
            Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], buf).into_response(),
            Err(e) => ApiError::Internal(anyhow::anyhow!("the answer did not serialize: {e}")).into_response(),
        }
    }
}
