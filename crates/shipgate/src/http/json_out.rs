//! A JSON answer written into a buffer sized for it.
//!
//! `axum::Json` writes into a 128-byte `BytesMut` that grows as it goes, through
//! `bytes`' `Writer`, whose every small write (each key and string of the answer) costs
//! more than the copy it makes. A list of 100 shipments is about 150 kB; measured with
//! callgrind (`bench/p4_cpu.sh CALLGRIND=1 CALLGRIND_READ=list`), the writer's growth and
//! per-write work were a sixth of the list's instructions. A `Vec` with room for the
//! whole answer takes each write as a plain copy. The value writes its own JSON
//! ([`WriteJson`]: the same bytes as its `Serialize`, without serde_json's per-key
//! escaping).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::service::views::json_text::WriteJson;

/// `value` as `application/json`, written into a buffer of its size hint.
pub struct JsonOut<T>(pub T);

impl<T: WriteJson> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        // About the answer's size: more costs one reallocation, less wastes nothing but
        // the unused room until the answer is sent.
        let mut buf = Vec::with_capacity(self.0.json_size_hint());
        match self.0.write_json(&mut buf) {
            Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], buf).into_response(),
            Err(e) => ApiError::Internal(anyhow::anyhow!("the answer did not serialize: {e}")).into_response(),
        }
    }
}
