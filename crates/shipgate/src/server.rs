//! The HTTP server: hyper's HTTP/1.1 connection loop with the limits `axum::serve`
//! does not offer (issue 10 "Slow clients"; docs/quality.md security):
//! - a request head must arrive within `http_header_read_timeout_ms`, and an idle
//!   keep-alive connection is closed after the same time (hyper's
//!   `header_read_timeout`, which needs a timer: without one, as in `axum::serve`,
//!   it never fires);
//! - a request body must arrive within `http_body_read_timeout_ms` of its head: the
//!   body is wrapped in a deadline, a handler reading past it gets an error, and the
//!   answer becomes 408 problem+json with the connection closed;
//! - at most `max_connections_per_client` open connections per client address
//!   (trusted proxies exempt); more are answered 429 and closed at once.
//!
//! The peer address is put in each request as `ConnectInfo<SocketAddr>`, as
//! `into_make_service_with_connect_info` does, for `http::auth::client_ip`. HTTP/1.1
//! only: TLS and HTTP/2 end at the proxy in front (README "Running it for real").

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::error::ApiError;

/// What one server enforces on its clients.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections_per_client: usize,
    pub trusted_proxies: Vec<IpNet>,
}

impl ServeLimits {
    pub fn from_config(c: &Config) -> ServeLimits {
        ServeLimits {
            header_read_timeout: c.http_header_read_timeout,
            body_read_timeout: c.http_body_read_timeout,
            max_connections_per_client: c.max_connections_per_client,
            trusted_proxies: c.trusted_proxies.clone(),
        }
    }
}

/// Open connections per client address. Entries exist only while their connections
/// are open, so the table is bounded by the open connections themselves.
#[derive(Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of a client; released on drop.
struct Slot {
    table: Arc<OpenConnections>,
    ip: IpAddr,
}

impl OpenConnections {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { table: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.table.0.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then stop accepting and
/// let open connections finish their requests (idle ones are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let open = Arc::new(OpenConnections::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning
                    // (axum::serve does the same).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip = peer.ip().to_canonical();
        let slot = if limits.trusted_proxies.iter().any(|n| n.contains(&ip)) {
            None
        } else {
            match open.take(ip, limits.max_connections_per_client) {
                Some(s) => Some(s),
                None => {
                    refuse(&stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = limits.body_read_timeout;
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(handle(router, req, peer, body_timeout).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // Requests hyper cannot parse are answered as problems (http/wire.rs).
            .serve_connection(TokioIo::new(crate::http::wire::ProblemIo::new(stream)), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One connection too many from this address: a best-effort 429 (never waiting on the
/// client), then close.
fn refuse(stream: &tokio::net::TcpStream) {
    metrics::counter!("shipgate_connections_refused_total").increment(1);
    const BODY: &str = r#"{"type":"https://shipgate.dev/problems/too_many_connections","title":"Too many connections","status":429,"detail":"too many open connections from this address; close some and retry","code":"too_many_connections"}"#;
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

async fn handle(router: Router, req: Request<Incoming>, peer: SocketAddr, body_timeout: Duration) -> Response {
    // No allocation: a handful of lengths per request.
    let head_bytes = req.uri().path().len()
        + req.uri().query().map_or(0, str::len)
        + req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum::<usize>();
    if let Some(refused) = crate::http::wire::head_too_large(head_bytes) {
        return refused;
    }
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let late = Arc::new(AtomicBool::new(false));
    let body = DeadlineBody { inner: body, deadline: Box::pin(tokio::time::sleep(body_timeout)), late: late.clone() };
    let resp = match router.oneshot(Request::from_parts(parts, Body::new(body))).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if late.load(Ordering::Relaxed) { body_too_slow(&resp, body_timeout) } else { resp }
}

/// The answer when the handler hit the body deadline, whatever it made of the error.
fn body_too_slow(original: &Response, limit: Duration) -> Response {
    let request_id = original.headers().get("x-request-id").cloned();
    let e = ApiError::client(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "Request body too slow",
        format!("the request body did not arrive within {} ms of its head", limit.as_millis()),
    );
    let mut resp = match request_id.as_ref().and_then(|v| v.to_str().ok()) {
        Some(id) => crate::error::REQUEST_ID.sync_scope(id.to_owned(), || e.into_response()),
        None => e.into_response(),
    };
    if let Some(id) = request_id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[derive(Debug, thiserror::Error)]
#[error("request body not received in time")]
struct BodyTimeout;

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}
