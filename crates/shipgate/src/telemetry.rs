//! Logging set-up (tracing-subscriber with env filter; text or JSON), in the spirit of
//! zero2prod's `telemetry.rs`. Secrets never reach a log line: they are wrapped in
//! `secrecy` types whose `Debug` prints `[REDACTED]`, and request logs carry the
//! route template, not bodies or headers.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`: tests and the sandbox may call this more than once.
    let _ = match format {
        // The span list: a line inside a carrier call or a job step carries the ids of
        // every span around it (request, tenant, job, shipment), not only the innermost.
        LogFormat::Json => registry.with(fmt::layer().json().with_current_span(true).with_span_list(true)).try_init(),
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).try_init(),
    };
}
