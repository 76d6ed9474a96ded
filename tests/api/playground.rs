//! The browser playground's files: served without a key, with their content types; every file
//! the page names, and every module its scripts import, is one the server has, and no other
//! name is. Its behaviour in a browser: `tests/e2e`.

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
        page.contains(r#"<script type="module" src="/playground/main.js"></script>"#),
        "{page}"
    );
    for (path, expected) in [
        ("/playground/main.js", "text/javascript; charset=utf-8"),
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

/// The relative specifiers of `source`'s static imports (`from './x.js'`, `import './x.js'`)
/// as paths on the server, for scripts served from `/playground/`.
fn imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for keyword in ["from", "import"] {
        for quote in ['\'', '"'] {
            let opening = format!("{keyword} {quote}./");
            for (at, _) in source.match_indices(&opening) {
                let rest = &source[at + opening.len()..];
                if let Some(end) = rest.find(quote) {
                    found.push(format!("/playground/{}", &rest[..end]));
                }
            }
        }
    }
    found
}

#[test]
fn imports_finds_named_and_bare_imports() {
    let source = "import { $ } from './dom.js';\nimport {\n  a, b,\n} from \"./api.js\";\n\
                  import './side.js';\nimport x from 'https://elsewhere/x.js';";
    let mut found = imports(source);
    found.sort();
    assert_eq!(
        found,
        [
            "/playground/api.js",
            "/playground/dom.js",
            "/playground/side.js"
        ]
    );
}

#[tokio::test]
async fn every_module_the_scripts_import_is_served_as_javascript() {
    let app = spawn_app().await;
    let (_, _, _, page) = get(&app, "/").await;
    let mut queue: Vec<String> = page
        .split(['"', '\''])
        .filter(|part| part.starts_with("/playground/") && part.ends_with(".js"))
        .map(str::to_owned)
        .collect();
    assert!(!queue.is_empty(), "the page names its script");
    let mut seen = std::collections::BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, content_type, cache, body) = get(&app, &path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(content_type, "text/javascript; charset=utf-8", "{path}");
        assert_eq!(cache, "no-cache", "{path}");
        queue.extend(imports(&body));
    }
    // The page's script is split into modules: a parse that found none would prove nothing.
    assert!(seen.len() >= 5, "modules reached from the page: {seen:?}");
}

#[tokio::test]
async fn no_other_name_under_playground_is_served() {
    let app = spawn_app().await;
    // mod.rs sits beside the files on disk: the server serves names from its table, never
    // from the filesystem.
    for path in [
        "/playground/nope.js",
        "/playground/mod.rs",
        "/playground/index.html",
        "/playground/",
    ] {
        let (status, _, _, _) = get(&app, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_page_needs_no_key_when_keys_are_on_but_the_api_still_does() {
    let app = spawn_app_with(keyed_config(), None).await;
    for path in ["/", "/playground/main.js", "/playground/style.css"] {
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
