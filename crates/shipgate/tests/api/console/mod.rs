//! The ops console (issue 14, docs/console.md) over HTTP: a browser's requests, without
//! a browser. `Console` signs in with a form post like a browser does, keeps the
//! session cookie, and posts forms with the fields a page rendered (CSRF token,
//! idempotency key) and the site's own `Origin`.

mod pages;
mod sessions;
mod shipments;

use crate::helpers::TestApp;

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// The hidden and named fields of the form posting to `action`, as the page rendered them.
    #[track_caller]
    pub fn form(&self, action: &str) -> Vec<(String, String)> {
        let needle = format!("action=\"{action}\"");
        let at = self.text.find(&needle).unwrap_or_else(|| panic!("no form posting to {action} in:\n{}", self.text));
        let end = self.text[at..].find("</form>").map(|e| at + e).expect("form end");
        let form = &self.text[at..end];
        let mut fields = Vec::new();
        let mut rest = form;
        while let Some(i) = rest.find("name=\"") {
            rest = &rest[i + 6..];
            let name = &rest[..rest.find('"').expect("name end")];
            let value = rest
                .find("value=\"")
                .filter(|v| !rest[..*v].contains('>'))
                .map(|v| {
                    let r = &rest[v + 7..];
                    r[..r.find('"').expect("value end")].replace("&amp;", "&")
                })
                .unwrap_or_default();
            fields.push((name.to_owned(), value));
        }
        fields
    }
}

pub struct Console<'a> {
    pub app: &'a TestApp,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

impl<'a> Console<'a> {
    /// Not signed in.
    pub fn anonymous(app: &'a TestApp) -> Console<'a> {
        Console { app, client: client(), cookie: None }
    }

    /// Signed in with `key`; asserts the sign-in worked.
    pub async fn signed_in(app: &'a TestApp, key: &str) -> Console<'a> {
        let mut c = Console::anonymous(app);
        let r = c.post_raw("/console/sign-in", &[("api_key", key), ("next", "/console/shipments")], true).await;
        assert_eq!(r.status, 303, "sign-in: {}", r.text);
        c.cookie = Some(session_cookie(&r).expect("a session cookie"));
        c
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut req = self.client.get(format!("{}{}", self.app.base, path));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("sg_console={c}"));
        }
        page(req.send().await.expect("request")).await
    }

    /// Post a form with the site's own Origin (or none).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], origin: bool) -> Page {
        self.post_with(path, fields, if origin { Some(self.app.base.as_str()) } else { None }).await
    }

    pub async fn post_with(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = self
            .client
            .post(format!("{}{}", self.app.base, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("sg_console={c}"));
        }
        page(req.send().await.expect("request")).await
    }

    /// Press the button of the form posting to `action` on `page`, as a browser would.
    pub async fn submit(&self, page: &Page, action: &str, extra: &[(&str, &str)]) -> Page {
        let fields = page.form(action);
        // A field given in `extra` replaces the page's (a choice made in a select).
        let mut all: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(extra);
        self.post_raw(action, &all, true).await
    }
}

async fn page(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Page { status, headers, text }
}

/// The session cookie's value a response sets.
pub fn session_cookie(page: &Page) -> Option<String> {
    let set = page.header("set-cookie")?;
    let value = set.strip_prefix("sg_console=")?.split(';').next()?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// Every section of the console's navigation (each page is checked for secrets).
pub const SECTIONS: &[&str] = &[
    "/console/",
    "/console/shipments",
    "/console/webhooks",
    "/console/jobs",
    "/console/status-mappings",
    "/console/inbound",
    "/console/connections",
];
