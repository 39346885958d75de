//! Access-token cache shared by every adapter: one current token per connection in
//! memory (safe to lose), persisted encrypted through a [`TokenStore`], and exactly
//! one refresh in flight per connection in this instance. A caller whose token was
//! refused asks for a refresh *of that token*: if another caller already replaced
//! it, the new one is returned without a second login (the 50-callers stampede test).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::CarrierError;

/// Where a connection's token is persisted (Postgres, encrypted; see `app::DbTokenStore`).
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self) -> Option<SecretString>;
    async fn save(&self, token: Option<&SecretString>);
}

pub struct TokenCell {
    current: std::sync::RwLock<Option<SecretString>>,
    refresh: tokio::sync::Mutex<()>,
    store: Arc<dyn TokenStore>,
}

fn same(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret() == b.expose_secret()
}

impl TokenCell {
    pub fn new(store: Arc<dyn TokenStore>) -> TokenCell {
        TokenCell { current: std::sync::RwLock::new(None), refresh: tokio::sync::Mutex::new(()), store }
    }

    fn peek(&self) -> Option<SecretString> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    fn set(&self, t: Option<SecretString>) {
        if let Ok(mut g) = self.current.write() {
            *g = t;
        }
    }

    /// The current token, obtaining one with `obtain` if there is none anywhere.
    pub async fn get<F, Fut>(&self, obtain: F) -> Result<SecretString, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SecretString, CarrierError>>,
    {
        if let Some(t) = self.peek() {
            return Ok(t);
        }
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.peek() {
            return Ok(t);
        }
        if let Some(t) = self.store.load().await {
            self.set(Some(t.clone()));
            return Ok(t);
        }
        let t = obtain().await?;
        self.store.save(Some(&t)).await;
        self.set(Some(t.clone()));
        Ok(t)
    }

    /// `stale` was refused by the carrier: replace it once, however many callers ask.
    pub async fn replace<F, Fut>(&self, stale: &SecretString, obtain: F) -> Result<SecretString, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SecretString, CarrierError>>,
    {
        let _guard = self.refresh.lock().await;
        if let Some(t) = self.peek()
            && !same(&t, stale)
        {
            return Ok(t);
        }
        // Another instance may have refreshed it already.
        if let Some(t) = self.store.load().await
            && !same(&t, stale)
        {
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

    /// Remember a token obtained outside `get`/`replace` (e.g. a refreshed GUID).
    pub async fn put(&self, t: SecretString) {
        let _guard = self.refresh.lock().await;
        self.store.save(Some(&t)).await;
        self.set(Some(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Mem(std::sync::Mutex<Option<String>>);
    #[async_trait]
    impl TokenStore for Mem {
        async fn load(&self) -> Option<SecretString> {
            self.0.lock().ok()?.clone().map(SecretString::from)
        }
        async fn save(&self, t: Option<&SecretString>) {
            if let Ok(mut g) = self.0.lock() {
                *g = t.map(|t| t.expose_secret().to_owned());
            }
        }
    }

    #[tokio::test]
    async fn fifty_callers_with_a_refused_token_cause_one_refresh() {
        let cell = Arc::new(TokenCell::new(Arc::new(Mem(std::sync::Mutex::new(Some("old".into()))))));
        let logins = Arc::new(AtomicU32::new(0));
        let stale = cell.get(|| async { Ok(SecretString::from("never")) }).await.expect("token");
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cell, logins, stale) = (cell.clone(), logins.clone(), stale.clone());
            tasks.push(tokio::spawn(async move {
                cell.replace(&stale, || async {
                    logins.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(SecretString::from("new"))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("join").expect("token").expose_secret(), "new");
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
    }
}
