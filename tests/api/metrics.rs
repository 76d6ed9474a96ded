//! SPEC §11 metrics, read back through `GET /metrics` with a small parser of the Prometheus
//! text format. Each test server owns its registry, so values are exact, not deltas.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake_upstream::openai_chunk;
use crate::support::prometheus::{Scrape, parse};
use crate::support::{
    FakeUpstream, Reply, SseReader, TestApp, chat, spawn_app, spawn_app_with, test_config,
};

async fn scrape(app: &TestApp) -> Scrape {
    // No client key: Prometheus does not carry one.
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

/// Scrapes until `check` holds: for values that settle just after a response has ended
/// (a producer task finishing its bookkeeping). Fails after a generous deadline.
async fn scrape_until(app: &TestApp, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scraped = scrape(app).await;
        if check(&scraped) {
            return scraped;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never settled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ACTIVE_STREAMS: &str = "tokenrelay_active_streams";
const ACTIVE_SUBSCRIBERS: &str = "tokenrelay_active_subscribers";
const EVENTS: &str = "tokenrelay_events_total";
const FIRST_TOKEN_COUNT: &str = "tokenrelay_time_to_first_token_seconds_count";
const ADDED_LATENCY_COUNT: &str = "tokenrelay_event_added_latency_seconds_count";

#[tokio::test]
async fn every_metric_is_exported_with_its_type() {
    let app = spawn_app().await;
    let scraped = scrape(&app).await;
    for (name, kind) in [
        (ACTIVE_STREAMS, "gauge"),
        (ACTIVE_SUBSCRIBERS, "gauge"),
        ("tokenrelay_event_added_latency_seconds", "histogram"),
        (EVENTS, "counter"),
    ] {
        assert_eq!(
            scraped.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }
    assert_eq!(scraped.sum(ACTIVE_STREAMS, &[]), 0.0);
    assert_eq!(scraped.sum(EVENTS, &[("type", "message.delta")]), 0.0);
}

#[tokio::test]
async fn a_running_stream_is_counted_while_it_runs_and_released_after() {
    // An upstream that says two words and then holds the connection open: the stream runs
    // until it is cancelled, however slow the machine.
    let upstream = FakeUpstream::start(Reply::Stream {
        chunks: vec![openai_chunk("Hello"), openai_chunk(" world")],
        gap: Duration::ZERO,
        hang: true,
    })
    .await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let model = "openai/metrics-running";
    let (id, _) = app.create_stream(model).await;
    let mut reader = SseReader::new(app.events(&id, None, "").await);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(reader.next().await.unwrap().event);
    }
    assert_eq!(seen, ["stream.started", "message.delta", "message.delta"]);

    let during = scrape(&app).await;
    assert_eq!(during.sum(ACTIVE_STREAMS, &[]), 1.0);
    assert_eq!(during.sum(ACTIVE_SUBSCRIBERS, &[]), 1.0);
    assert_eq!(during.sum(EVENTS, &[("type", "message.delta")]), 2.0);
    assert_eq!(during.sum(EVENTS, &[("type", "stream.started")]), 1.0);
    let first_token = [("model", model), ("provider", "openai")];
    assert_eq!(during.sum(FIRST_TOKEN_COUNT, &first_token), 1.0);

    let cancelled = app
        .post(&format!("/v1/streams/{id}/cancel"), &json!({}))
        .await;
    assert!(cancelled.status().is_success());
    // The cancel is appended while the subscriber is live: its delivery is timed.
    let rest = reader.collect().await;
    assert_eq!(rest.last().unwrap().event, "stream.cancelled");

    let after = scrape_until(&app, |s| s.sum(ACTIVE_STREAMS, &[]) == 0.0).await;
    assert_eq!(after.sum(ACTIVE_SUBSCRIBERS, &[]), 0.0);
    assert_eq!(after.sum(EVENTS, &[("type", "stream.cancelled")]), 1.0);
    assert!(after.sum(ADDED_LATENCY_COUNT, &[]) >= 1.0);
    assert_eq!(after.sum(FIRST_TOKEN_COUNT, &first_token), 1.0);
    // Ids and tokens never become label values.
    for sample in &after.samples {
        for value in sample.labels.values() {
            assert!(!value.contains(&id), "{sample:?}");
            assert!(
                !value.starts_with("rt_") && !value.starts_with("wt_"),
                "{sample:?}"
            );
        }
    }
    let route = [
        ("method", "GET"),
        ("route", "/v1/streams/{id}/events"),
        ("status", "200"),
    ];
    assert_eq!(after.sum("tokenrelay_http_requests_total", &route), 1.0);
}

#[tokio::test]
async fn a_finished_generation_counts_its_tokens_first_token_and_resumes() {
    let app = spawn_app().await;
    let model = "mock/5t-0ms";
    let answer = app.post("/v1/chat/completions", &chat(model, false)).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let id = answer["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("chatcmpl-");
    let prompt = answer["usage"]["prompt_tokens"].as_f64().unwrap();

    let scraped = scrape_until(&app, |s| s.sum(ACTIVE_STREAMS, &[]) == 0.0).await;
    let tokens = |kind| [("model", model), ("key", "anonymous"), ("kind", kind)];
    assert_eq!(
        scraped.sum("tokenrelay_tokens_total", &tokens("completion")),
        5.0
    );
    assert_eq!(
        scraped.sum("tokenrelay_tokens_total", &tokens("prompt")),
        prompt
    );
    let first_token = [("model", model), ("provider", "mock")];
    assert_eq!(scraped.sum(FIRST_TOKEN_COUNT, &first_token), 1.0);
    assert_eq!(scraped.sum(EVENTS, &[("type", "message.delta")]), 5.0);
    assert_eq!(scraped.sum(EVENTS, &[("type", "stream.completed")]), 1.0);

    // Reconnects, one per outcome of the resume rules.
    let log = SseReader::new(app.events(id, None, "?format=native").await)
        .collect()
        .await;
    let (middle, last) = (&log[2].id, &log.last().unwrap().id);
    let resumed = app.events(id, Some(middle), "?format=native").await;
    assert_eq!(SseReader::new(resumed).collect().await.len(), log.len() - 3);
    assert_eq!(app.events(id, Some(last), "").await.status(), 204);
    let reset = app.events(id, Some("garbage"), "?format=native").await;
    assert_eq!(SseReader::new(reset).collect().await[0].event, "reset");
    let gone = app.events(id, Some("garbage"), "?format=openai").await;
    assert_eq!(gone.status(), 410);
    let unknown = tokenrelay::event::StreamId::random().to_string();
    assert_eq!(app.events(&unknown, Some(middle), "").await.status(), 404);

    let scraped = scrape(&app).await;
    let resumes = |outcome| scraped.sum("tokenrelay_resumes_total", &[("outcome", outcome)]);
    assert_eq!(resumes("resumed"), 1.0);
    assert_eq!(resumes("finished"), 1.0);
    assert_eq!(resumes("reset"), 1.0);
    assert_eq!(resumes("gone"), 1.0);
    assert_eq!(resumes("not_found"), 1.0);
    // A first read without a position is not a resume.
    assert_eq!(scraped.sum("tokenrelay_resumes_total", &[]), 5.0);
    // Those events were replayed from before each subscriber came: not timed as live.
    assert_eq!(scraped.sum(ADDED_LATENCY_COUNT, &[]), 0.0);
}

#[tokio::test]
async fn every_failed_upstream_attempt_is_counted_under_its_provider_and_code() {
    for (status, code) in [
        (429, "upstream_rate_limited"),
        (500, "upstream_unavailable"),
    ] {
        let upstream = FakeUpstream::start(Reply::Status {
            status,
            body: r#"{"error":{"message":"no"}}"#.into(),
            retry_after: None,
        })
        .await;
        let app = spawn_app_with(test_config(), Some(&upstream)).await;
        let answer = app
            .post("/v1/chat/completions", &chat("openai/metrics-errors", true))
            .await;
        assert_eq!(answer.status(), status);
        // Retries are attempts too: one count per request the upstream saw.
        let attempts = upstream.requests().len() as f64;
        assert!(attempts >= 1.0);
        let scraped = scrape(&app).await;
        let labels = [("provider", "openai"), ("code", code)];
        assert_eq!(
            scraped.sum("tokenrelay_upstream_errors_total", &labels),
            attempts
        );
        assert_eq!(
            scraped.sum("tokenrelay_upstream_errors_total", &[]),
            attempts
        );
    }
}

#[tokio::test]
async fn metrics_listen_takes_metrics_off_the_public_port() {
    let mut config = test_config();
    config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = spawn_app_with(config, None).await;
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    // What the binary runs on `metrics_listen`, on port 0 here.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = listener.local_addr().unwrap();
    let router = tokenrelay::http::ops_router(app.state.clone());
    tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener, router,
    )));
    let get = |path: &str| app.client.get(format!("http://{ops}{path}")).send();
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    let scraped = parse(&metrics.text().await.unwrap());
    assert_eq!(scraped.sum(ACTIVE_STREAMS, &[]), 0.0);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/v1/models").await.unwrap().status(), 404);
}
