//! Requests that never reach the router: when hyper cannot parse a request head it
//! answers by itself (400, 414 URI too long, 431 headers too large) with an empty
//! body and closes the connection (hyper 1.x `proto/h1/role.rs` `Server::on_error`,
//! `conn.rs` `on_parse_error`). hyper offers no hook for that answer, so the
//! connection's writer recognises it and sends a problem+json in its place, like every
//! other error of this API.
//!
//! The server loop (`crate::server`) wraps every accepted connection in [`ProblemIo`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Problem;

/// hyper's limits for a request head (hyper 1.x `proto/h1/role.rs` `MAX_URI_LEN`,
/// `DEFAULT_MAX_HEADERS`; `proto/h1/io.rs` `DEFAULT_MAX_BUFFER_SIZE`), quoted in the
/// problem details.
const MAX_URI_BYTES: usize = 65_534;
const MAX_HEADERS: usize = 100;
pub(crate) const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// A connection that replaces hyper's automatic, bodiless error answer with a
/// problem+json one. Everything else passes through untouched.
pub struct ProblemIo<T> {
    inner: T,
    /// The replacement answer still to write, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ProblemIo<T> {
    /// Wrap one accepted connection (for a server loop other than `axum::serve`).
    pub fn new(inner: T) -> Self {
        ProblemIo { inner, pending: Vec::new(), written: 0 }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Write out a replacement answer taken over from hyper.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        if !self.pending.is_empty() {
            self.pending = Vec::new();
            self.written = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Take `buf` over when it is hyper's automatic error answer: the caller is told it
    /// was written in full and the replacement goes out instead.
    fn take_over(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let replacement = replacement(buf)?;
        self.pending = replacement;
        self.written = 0;
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Still pending: flush and shutdown finish it before anything else.
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(p) = this.take_over(cx, buf) {
            return p;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper's error answer is a head alone, so one non-empty slice.
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (nonempty.next(), nonempty.next())
            && let Some(p) = this.take_over(cx, only)
        {
            return p;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The problem+json answer for hyper's automatic one, or None when `buf` is anything
/// else. hyper's answer is exactly a response head with status 400, 414 or 431 and
/// `content-length: 0`; this API never answers those statuses without a body.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    buf.get(..9).filter(|v| *v == b"HTTP/1.1 " || *v == b"HTTP/1.0 ")?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if head_len != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?.to_ascii_lowercase();
    if !head.contains("\r\ncontent-length: 0\r\n") || head.contains("\r\ncontent-type:") {
        return None;
    }
    let (status, code, title, detail) = match buf.get(9..12)? {
        b"400" => (
            400,
            "bad_request",
            "Malformed HTTP request",
            "the request line or a header is not valid HTTP/1.1 (RFC 9112)".to_owned(),
        ),
        b"414" => (
            414,
            "uri_too_long",
            "URI too long",
            format!("the request target is longer than the {MAX_URI_BYTES} bytes this server reads"),
        ),
        b"431" => (
            431,
            "headers_too_large",
            "Request headers too large",
            format!(
                "the request has more than {MAX_HEADERS} headers or a head larger than the {MAX_HEAD_BYTES} bytes this server reads"
            ),
        ),
        _ => return None,
    };
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(status, request_id = %request_id, "request refused before routing: it could not be parsed");
    metrics::counter!("shipgate_http_requests_total", "route" => "unparsed", "method" => "unknown", "status" => status.to_string())
        .increment(1);
    let problem = Problem {
        problem_type: format!("https://shipgate.dev/problems/{code}"),
        title: title.to_owned(),
        status,
        detail,
        code: code.to_owned(),
        errors: None,
        request_id: Some(request_id.clone()),
        shipment: None,
    };
    let body = serde_json::to_vec(&problem).ok()?;
    // Keep hyper's status line and Date; the connection closes after this answer.
    let text = std::str::from_utf8(buf).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let date = lines.find(|l| l.to_ascii_lowercase().starts_with("date:"));
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/problem+json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\nconnection: close\r\n", body.len()).as_bytes());
    out.extend_from_slice(format!("x-request-id: {request_id}\r\n").as_bytes());
    if let Some(date) = date {
        out.extend_from_slice(date.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// A request head larger than [`MAX_HEAD_BYTES`] that hyper still parsed: hyper tries
/// to parse what one read brought before it checks the buffer's size, so a large head
/// that arrives in one read (a busy server reads late) gets through. The server loop
/// refuses it with the same 431 problem hyper's own refusal is turned into, so the limit
/// does not depend on timing.
pub(crate) fn head_too_large(head_bytes: usize) -> Option<axum::response::Response> {
    use axum::response::IntoResponse as _;
    if head_bytes <= MAX_HEAD_BYTES {
        return None;
    }
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    tracing::info!(status = 431, request_id = %request_id, head_bytes, "request head larger than the limit refused");
    let problem = Problem {
        problem_type: "https://shipgate.dev/problems/headers_too_large".to_owned(),
        title: "Request headers too large".to_owned(),
        status: 431,
        detail: format!(
            "the request has more than {MAX_HEADERS} headers or a head larger than the {MAX_HEAD_BYTES} bytes this server reads"
        ),
        code: "headers_too_large".to_owned(),
        errors: None,
        request_id: Some(request_id.clone()),
        shipment: None,
    };
    let body = serde_json::to_vec(&problem).ok()?;
    Some(
        (
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            [("content-type", "application/problem+json"), ("connection", "close")],
            [("x-request-id", request_id)],
            body,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_are_replaced_and_nothing_else() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 22 Nov 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(head).expect("replaced")).expect("utf8");
        let (h, body) = out.split_once("\r\n\r\n").expect("head");
        assert!(h.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{h}");
        assert!(h.contains("content-type: application/problem+json") && h.contains("date: Sun, 22 Nov 2026"), "{h}");
        assert!(h.contains(&format!("content-length: {}", body.len())), "{h}");
        let p: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!((p["status"].as_u64(), p["code"].as_str()), (Some(431), Some("headers_too_large")));

        // An answer with a body, another status, or more than a head passes through.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}").is_none());
        assert!(
            replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ncontent-type: text/plain\r\n\r\n").is_none()
        );
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200").is_none());
        assert!(replacement(b"{\"HTTP/1.1 400 \"}").is_none());
    }
}
