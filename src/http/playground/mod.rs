//! The browser playground at `GET /`: one page with its stylesheet and script modules, embedded
//! in the binary (no build step, nothing read from disk at run time). It owns serving those
//! files and nothing else: the page talks to the public API like any other client.
//!
//! The routes are open (no key), like health: the page holds no secret. Its API calls carry the
//! key its user types in, and its EventSources the streams' read tokens.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;

const INDEX: &str = include_str!("index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Everything under `/playground/`: name, content type, body. index.html loads `main.js`,
/// which imports the other modules by relative name (`./tail.js`).
const FILES: &[(&str, &str, &str)] = &[
    ("style.css", CSS, include_str!("style.css")),
    ("main.js", JS, include_str!("main.js")),
    ("dom.js", JS, include_str!("dom.js")),
    ("api.js", JS, include_str!("api.js")),
    ("tail.js", JS, include_str!("tail.js")),
    ("join.js", JS, include_str!("join.js")),
    ("chat.js", JS, include_str!("chat.js")),
    ("agent.js", JS, include_str!("agent.js")),
    ("patch.js", JS, include_str!("patch.js")),
    ("tree.js", JS, include_str!("tree.js")),
    ("feed.js", JS, include_str!("feed.js")),
    ("tabs.js", JS, include_str!("tabs.js")),
];

/// The page loads only its own files and talks only to its own origin; it cannot be framed
/// (clickjacking a Cancel), and its address, which may carry a read token, is never sent on.
/// `script-src 'self'` covers the modules' imports of one another.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `GET /` and the files the page loads.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/playground/{file}", get(file))
}

async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A file from the table; any other name is the API's usual 404.
async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some(&(_, content_type, body)) => asset(content_type, body),
        None => ApiError::RouteNotFound.into_response(),
    }
}

/// `no-cache` rather than a long max-age: the files change with the binary and carry no
/// version in their names, so a browser revalidates instead of running an old script.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
