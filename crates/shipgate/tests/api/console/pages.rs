//! Every console page, signed in: no secret is ever rendered.

use super::Console;
use crate::helpers::spawn_app;

#[tokio::test]
async fn no_page_renders_a_secret() {
    let app = spawn_app().await;
    let s = app.book("CONSOLE-SECRETS").await;
    let id = s["id"].as_str().expect("id");
    let c = Console::signed_in(&app, &app.key).await;
    let key_secret = app.key.rsplit('_').next().expect("secret");
    let mut pages = vec!["/console/shipments".to_owned(), format!("/console/shipments/{id}")];
    pages.extend(super::SECTIONS.iter().map(|s| s.to_string()));
    for path in pages {
        let p = c.get(&path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.text);
        for secret in [key_secret, "demo-pass", "whsec_"] {
            assert!(!p.text.contains(secret), "{path} shows {secret}");
        }
        let cookie = c.cookie.as_deref().expect("cookie");
        assert!(!p.text.contains(cookie), "{path} shows the session value");
    }
}
