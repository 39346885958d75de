//! Access-token cache shared by every adapter.
//!
//! One current token per connection in memory (safe to lose), persisted encrypted
//! through a [`TokenStore`]; renewed before it expires and when the carrier refuses
//! it; exactly one renewal in flight per connection: an in-process mutex for the
//! callers of this instance, and the store's lock (a Postgres advisory lock) across
//! instances. A caller whose token was refused asks for a renewal *of that token*:
//! if someone already replaced it, the new one is returned without another login.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::CarrierError;

/// Renew this long before the stated expiry, so no call leaves with a dying token.
pub const RENEW_BEFORE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Token {
    pub value: SecretString,
    /// None: no stated expiry (e-Courier's UserGUID lives while it is used).
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("value", &"[REDACTED]").field("expires_at", &self.expires_at).finish()
    }
}

impl Token {
    pub fn lasting(value: SecretString) -> Token {
        Token { value, expires_at: None }
    }
    pub fn expiring_in(value: SecretString, secs: i64) -> Token {
        Token { value, expires_at: Some(Utc::now() + chrono::Duration::seconds(secs)) }
    }
    fn fresh(&self) -> bool {
        self.expires_at.is_none_or(|t| t - chrono::Duration::from_std(RENEW_BEFORE).unwrap_or_default() > Utc::now())
    }
    fn same(&self, other: &SecretString) -> bool {
        self.value.expose_secret() == other.expose_secret()
    }
}

/// Held while a renewal is in progress; dropping it releases the lock.
pub type RenewalGuard = Box<dyn Send + Sync>;

/// Where a connection's token is persisted (Postgres, encrypted; see `app::DbTokenStore`).
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self) -> Option<Token>;
    async fn save(&self, token: Option<&Token>);
    /// Exclusive across instances; `None` when the lock cannot be had (then only the
    /// in-process mutex protects the renewal).
    async fn lock(&self) -> Option<RenewalGuard>;
}

pub struct TokenCell {
    current: std::sync::RwLock<Option<Token>>,
    renewal: tokio::sync::Mutex<()>,
    store: Arc<dyn TokenStore>,
}

impl TokenCell {
    pub fn new(store: Arc<dyn TokenStore>) -> TokenCell {
        TokenCell { current: std::sync::RwLock::new(None), renewal: tokio::sync::Mutex::new(()), store }
    }

    fn peek(&self) -> Option<Token> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    fn set(&self, t: Option<Token>) {
        if let Ok(mut g) = self.current.write() {
            *g = t;
        }
    }

    /// A token good for the next call: the cached one while fresh, else the stored
    /// one, else a new one from `obtain`.
    pub async fn get<F, Fut>(&self, obtain: F) -> Result<Token, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, CarrierError>>,
    {
        if let Some(t) = self.peek().filter(Token::fresh) {
            return Ok(t);
        }
        let _local = self.renewal.lock().await;
        if let Some(t) = self.peek().filter(Token::fresh) {
            return Ok(t);
        }
        if let Some(t) = self.store.load().await.filter(Token::fresh) {
            self.set(Some(t.clone()));
            return Ok(t);
        }
        let _global = self.store.lock().await;
        // Another instance may have renewed it while we waited for the lock.
        if let Some(t) = self.store.load().await.filter(Token::fresh) {
            self.set(Some(t.clone()));
            return Ok(t);
        }
        let t = obtain().await?;
        self.store.save(Some(&t)).await;
        self.set(Some(t.clone()));
        Ok(t)
    }

    /// `stale` was refused by the carrier: replace it once, however many callers ask.
    pub async fn replace<F, Fut>(&self, stale: &SecretString, obtain: F) -> Result<Token, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, CarrierError>>,
    {
        let _local = self.renewal.lock().await;
        if let Some(t) = self.peek().filter(|t| !t.same(stale) && t.fresh()) {
            return Ok(t);
        }
        let _global = self.store.lock().await;
        if let Some(t) = self.store.load().await.filter(|t| !t.same(stale) && t.fresh()) {
            self.set(Some(t.clone()));
            return Ok(t);
        }
        match obtain().await {
            Ok(t) => {
                self.store.save(Some(&t)).await;
                self.set(Some(t.clone()));
                Ok(t)
            }
            Err(e) => {
                self.set(None);
                self.store.save(None).await;
                Err(e)
            }
        }
    }

    /// Remember a token obtained outside `get`/`replace` (a verify, a keep-alive).
    pub async fn put(&self, t: Token) {
        let _local = self.renewal.lock().await;
        self.store.save(Some(&t)).await;
        self.set(Some(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Mem(std::sync::Mutex<Option<Token>>, Arc<tokio::sync::Mutex<()>>);
    #[async_trait]
    impl TokenStore for Mem {
        async fn load(&self) -> Option<Token> {
            self.0.lock().ok()?.clone()
        }
        async fn save(&self, t: Option<&Token>) {
            if let Ok(mut g) = self.0.lock() {
                *g = t.cloned();
            }
        }
        async fn lock(&self) -> Option<RenewalGuard> {
            Some(Box::new(self.1.clone().lock_owned().await))
        }
    }

    fn mem(t: Option<Token>) -> Arc<Mem> {
        Arc::new(Mem(std::sync::Mutex::new(t), Arc::new(tokio::sync::Mutex::new(()))))
    }

    #[tokio::test]
    async fn fifty_callers_with_a_refused_token_cause_one_refresh() {
        let cell = Arc::new(TokenCell::new(mem(Some(Token::lasting("old".into())))));
        let logins = Arc::new(AtomicU32::new(0));
        let stale = cell.get(|| async { Ok(Token::lasting("never".into())) }).await.expect("token").value;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cell, logins, stale) = (cell.clone(), logins.clone(), stale.clone());
            tasks.push(tokio::spawn(async move {
                cell.replace(&stale, || async {
                    logins.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Token::lasting("new".into()))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("join").expect("token").value.expose_secret(), "new");
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_near_its_expiry_is_renewed_before_use() {
        let cell = TokenCell::new(mem(Some(Token::expiring_in("dying".into(), 30))));
        let t = cell.get(|| async { Ok(Token::expiring_in("fresh".into(), 3600)) }).await.expect("token");
        assert_eq!(t.value.expose_secret(), "fresh");
        let again = cell.get(|| async { Ok(Token::lasting("unused".into())) }).await.expect("token");
        assert_eq!(again.value.expose_secret(), "fresh", "fresh tokens are reused");
    }

    #[tokio::test]
    async fn two_instances_sharing_a_store_renew_once() {
        let store = mem(None);
        let a = Arc::new(TokenCell::new(store.clone()));
        let b = Arc::new(TokenCell::new(store.clone()));
        let logins = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for cell in [a, b] {
            for _ in 0..10 {
                let (cell, logins) = (cell.clone(), logins.clone());
                tasks.push(tokio::spawn(async move {
                    cell.get(|| async {
                        logins.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Token::expiring_in("shared".into(), 3600))
                    })
                    .await
                }));
            }
        }
        for t in tasks {
            t.await.expect("join").expect("token");
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
    }
}
