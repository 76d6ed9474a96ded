//! The browser playground's files: served without a key, with their content types, and every
//! file the page names is one the server has. Its behaviour in a browser: `tests/e2e`.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::access::keyed_config;
use crate::support::{TestApp, spawn_app, spawn_app_with};

async fn get(app: &TestApp, path: &str) -> (u16, String, String, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, cache) = (header(CONTENT_TYPE), header(CACHE_CONTROL));
    let status = response.status().as_u16();
    (status, content_type, cache, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_its_script_and_its_style_are_served_with_their_types() {
    let app = spawn_app().await;
    let (status, content_type, cache, page) = get(&app, "/").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert_eq!(cache, "no-cache");
    assert!(
        page.contains(r#"<script type="module" src="/playground/app.js"></script>"#),
        "{page}"
    );
    for (path, expected) in [
        ("/playground/app.js", "text/javascript; charset=utf-8"),
        ("/playground/style.css", "text/css; charset=utf-8"),
    ] {
        let (status, content_type, cache, body) = get(&app, path).await;
        assert_eq!((status, content_type.as_str()), (200, expected), "{path}");
        assert_eq!(cache, "no-cache", "{path}");
        assert!(!body.trim().is_empty(), "{path} is empty");
    }
}

#[tokio::test]
async fn every_file_the_page_names_is_served() {
    let app = spawn_app().await;
    let (_, _, _, page) = get(&app, "/").await;
    let named: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.starts_with("/playground/"))
        .collect();
    assert!(named.len() >= 2, "script and style: {named:?}");
    for path in named {
        let (status, _, _, _) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test]
async fn the_page_needs_no_key_when_keys_are_on_but_the_api_still_does() {
    let app = spawn_app_with(keyed_config(), None).await;
    for path in ["/", "/playground/app.js", "/playground/style.css"] {
        let (status, _, _, _) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _, _, _) = get(&app, "/v1/models").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_page_may_load_only_its_own_files_and_may_not_be_framed() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}
