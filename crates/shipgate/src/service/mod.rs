//! The service layer: every workflow of the gateway (book or register, update, cancel,
//! refresh, retrack, complete, verify, quote, estimate, inbound ingest, webhook endpoint
//! management, job retry, status-mapping changes) and every read. It is the only layer
//! that talks to both the carriers and the store.
//!
//! Front ends (the HTTP API in `http`; the console of issue 14) parse a request into a
//! service input, call one function here with the [`Caller`] (tenant and credential:
//! authorization is tenant scoping, the history records the credential), and map the
//! answer: a view (`views`) or an [`Error`]. Workers (`jobs`, `tracking`, `webhooks`)
//! call the workflows they run.
//!
//! A workflow calls the carrier with no transaction open, then records the outcome, the
//! carrier exchanges and the history in one transaction (docs/architecture.md rule 6).

pub mod auth;
pub mod booking;
pub mod carriers;
pub mod connections;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod inbound;
pub mod jobs;
pub mod keepalive;
pub(crate) mod lane;
pub mod ops;
pub mod overview;
pub mod quotes;
pub mod reconcile;
pub mod refresh;
pub mod registry;
pub mod retention;
pub mod rotation;
pub mod sessions;
pub mod shipments;
pub mod sinks;
pub mod status_mappings;
pub mod timeline;
pub mod views;
pub mod webhooks;

pub use error::{Error, Refusal, Result};

use crate::store::Actor;

/// Who asks: the tenant whose objects are read and changed (nothing of another tenant
/// is ever found) and the credential that asked, which the history records.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    /// The API key's id (`key...`), never its secret.
    pub key_id: String,
}

impl Caller {
    /// The history's actor for what this caller changes.
    pub(crate) fn actor(&self) -> Actor {
        Actor::ApiKey(self.key_id.clone())
    }
}

/// Which page of a list: at most `limit` items after `after` (the key the previous page
/// ended with; the front end encodes it as its cursor).
#[derive(Debug, Clone)]
pub struct PageRequest<K = String> {
    pub limit: i64,
    pub after: Option<K>,
}

/// One page of a list and the key the next one starts after (None on the last page).
#[derive(Debug)]
pub struct Page<T, K = String> {
    pub items: Vec<T>,
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// A page from up to `limit + 1` rows (one more than asked tells whether another
    /// page follows), each row made into its view; `key` names where the next starts.
    pub(crate) fn of<R>(mut rows: Vec<R>, limit: i64, key: impl Fn(&R) -> K, view: impl FnMut(R) -> T) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more { rows.last().map(key) } else { None };
        Page { items: rows.into_iter().map(view).collect(), next }
    }

    /// [`Page::of`] with a view that may fail to build.
    pub(crate) fn try_of<R>(
        mut rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> K,
        view: impl FnMut(R) -> Result<T>,
    ) -> Result<Self> {
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more { rows.last().map(key) } else { None };
        Ok(Page { items: rows.into_iter().map(view).collect::<Result<_>>()?, next })
    }
}
