//! The per-request part of telemetry: count each answered request under its route template,
//! and put the stream a path names on the request's span, so every log line of the request
//! carries `stream_id`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::Metrics;
use crate::event::StreamId;

/// Route middleware (it runs after routing, so the matched template is known). Labels come
/// from the template and a fixed set of methods, never from the raw URI: stream ids and
/// tokens in paths or queries never become label values.
pub async fn observe(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if let Some(route) = &route {
        if let Some(id) = stream_in_path(route, request.uri().path()) {
            record_stream_id(&id);
        }
    }
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.http_request(method, route, response.status().as_u16());
    response
}

/// Records `stream_id` on the current request span (declared empty where the span is made).
pub fn record_stream_id(id: &StreamId) {
    tracing::Span::current().record("stream_id", id.as_str());
}

/// The stream id in `path` at the place of `{id}` in `template`, if it is one.
fn stream_in_path(template: &str, path: &str) -> Option<StreamId> {
    let at = template.split('/').position(|part| part == "{id}")?;
    path.split('/').nth(at)?.parse().ok()
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        // Any other token a client sends would be a new label value.
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_id_is_read_where_the_template_has_it() {
        let id = StreamId::random();
        let path = format!("/v1/streams/{id}/events");
        assert_eq!(
            stream_in_path("/v1/streams/{id}/events", &path),
            Some(id.clone())
        );
        assert_eq!(stream_in_path("/v1/streams/{id}", "/v1/streams/nope"), None);
        assert_eq!(stream_in_path("/v1/models", "/v1/models"), None);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
