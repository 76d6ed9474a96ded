//! Models, health and readiness, the SSE wire shape as a client sees it, and request-head size.

use std::time::Duration;

use serde_json::Value;

use crate::support::spawn_app;

#[tokio::test]
async fn models_lists_the_mock_models_in_openai_shape() {
    let app = spawn_app().await;
    let body: Value = app
        .client
        .get(app.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"mock/default".to_owned()), "{ids:?}");
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["object"] == "model")
    );
}

#[tokio::test]
async fn health_and_readiness_answer_and_readiness_fails_while_draining() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // Draining, through the in-process router (the listener itself stops accepting).
    use tower::ServiceExt;
    app.state.shutdown.cancel();
    let request = axum::http::Request::get("/readyz")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tokenrelay::http::router(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn the_wire_has_retry_in_the_first_frame_only_one_line_json_and_no_bom() {
    let app = spawn_app().await;
    let (id, _) = app.create_stream("mock/5t-0ms").await;
    app.wait_finished(&id, Duration::from_secs(5)).await;
    let bytes = app.events(&id, None, "").await.bytes().await.unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.starts_with("retry: 2000\nid: "), "{text}");
    assert_eq!(text.matches("retry:").count(), 1);
    assert!(!text.contains('\r'));
    for frame in text.trim_end_matches('\n').split("\n\n") {
        let lines: Vec<_> = frame
            .lines()
            .filter(|l| !l.starts_with("retry: "))
            .collect();
        assert_eq!(lines.len(), 3, "id, event, one data line: {frame:?}");
        assert!(
            lines[0].starts_with("id: ")
                && lines[1].starts_with("event: ")
                && lines[2].starts_with("data: {")
        );
        let id = &lines[0][4..];
        assert!(id.len() < 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
    }
}

#[tokio::test]
async fn request_heads_up_to_8_kib_are_served_and_larger_ones_get_431() {
    // The read buffer per connection is held at 8 KiB (memory per idle subscriber), which
    // caps a request head there: a big cookie still fits, a runaway one is refused.
    let app = spawn_app().await;
    let status = |size: usize| {
        let request = app
            .client
            .get(app.url("/healthz"))
            .header("x-padding", "a".repeat(size));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(6_000).await, 200);
    assert_eq!(status(9_000).await, 431);
    // The refusal closed only that connection.
    assert_eq!(status(10).await, 200);

    // The same cap over HTTP/2 with prior knowledge (h2c).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let over_h2 = |size: usize| {
        let request = h2
            .get(app.url("/healthz"))
            .header("x-padding", "a".repeat(size));
        async move { request.send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(over_h2(6_000).await.unwrap(), 200);
    let refused = over_h2(9_000).await;
    assert!(!matches!(refused, Ok(200)), "{refused:?}");
}

#[tokio::test]
async fn the_accept_loop_closes_connections_that_never_finish_a_request_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The accept loop itself, with a short head deadline (the server's is 30 s).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let stop = tokio_util::sync::CancellationToken::new();
    let deadline = Duration::from_millis(300);
    let server = tokio::spawn(tokenrelay::http::serve_connections(
        listener,
        router,
        stop.clone(),
        deadline,
    ));
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut whole = tokio::net::TcpStream::connect(addr).await.unwrap();
    whole
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = whole.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    for (name, socket) in [("silent", &mut silent), ("slow", &mut slow)] {
        // Closed by the server without an answer (hyper may say 408 first).
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut got))
            .await
            .unwrap_or_else(|_| panic!("the server never closed the {name} connection"));
        assert!(
            read.is_err() || !got.starts_with(b"HTTP/1.1 200"),
            "{name}: {got:?}"
        );
    }
    assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
    stop.cancel();
    drop(whole);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the accept loop did not stop")
        .unwrap();
}
