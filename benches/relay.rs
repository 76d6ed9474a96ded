//! Load generator: per-token added latency and throughput of tokenrelay against a direct
//! read of the same upstream, measured in one run.
//!
//! The upstream is a timed mock: every token carries its send time (`<n>:<unix ns> `), so
//! latency = receive time − send time, measured exactly for the direct read (the baseline)
//! and through tokenrelay with the memory store and, when `--redis URL` is given, the Redis
//! store. Every run also checks that no token is missing or duplicated.
//!
//! ```sh
//! cargo bench --bench relay                                   # memory store only
//! cargo bench --bench relay -- --redis redis://127.0.0.1:6379/0
//! ```

// A benchmark panics on a broken setup; that is its assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Json;
use axum::response::Response;
use axum::routing::post;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};
use tokenrelay::app::{AppState, serve};
use tokenrelay::config::{Config, Secrets};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `<N>t-<D>ms` → (N, D).
fn parse_model(model: &str) -> (u64, Duration) {
    let model = model.rsplit('/').next().unwrap_or(model);
    let (n, d) = model
        .trim_end_matches("ms")
        .split_once("t-")
        .unwrap_or(("10", "10"));
    (
        n.parse().unwrap_or(10),
        Duration::from_millis(d.parse().unwrap_or(10)),
    )
}

/// The timed upstream: OpenAI chunks whose content is `<n>:<send time ns> `.
async fn timed_upstream() -> SocketAddr {
    async fn answer(Json(request): Json<Value>) -> Response {
        let (tokens, gap) = parse_model(request["model"].as_str().unwrap_or(""));
        let body = async_stream::stream! {
            for n in 1..=tokens {
                if n > 1 && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                let chunk = json!({"choices": [{"index": 0, "delta": {"content": format!("{n}:{} ", now_ns())}}]});
                yield Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {chunk}\n\n")));
            }
            let usage = json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}});
            yield Ok(Bytes::from(format!("data: {usage}\n\ndata: [DONE]\n\n")));
        };
        let mut response = Response::new(Body::from_stream(body));
        response
            .headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        response
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/v1/chat/completions", post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn tokenrelay(upstream: SocketAddr, store: &str) -> SocketAddr {
    let mut config = Config {
        store: store.to_owned(),
        ..Config::default()
    };
    config.redis.key_prefix = format!("trbench:{:x}", rand::random::<u32>());
    config.upstream.openai_base_url = format!("http://{upstream}/v1");
    config.limits.max_stream_events = 1_000_000;
    let state = AppState::new(config, Secrets::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    addr
}

/// Reads one streamed chat answer; returns each token's latency in µs, checking order.
async fn read_stream(client: &reqwest::Client, base: &str, model: &str) -> Vec<f64> {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "go"}]});
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let mut events = response.bytes_stream().eventsource();
    let mut latencies = Vec::new();
    let mut expected = 1u64;
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        if event.data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(&event.data).unwrap();
        let Some(content) = chunk["choices"][0]["delta"]["content"].as_str() else {
            continue;
        };
        let Some((n, sent)) = content.trim().split_once(':') else {
            continue;
        };
        let received = now_ns();
        assert_eq!(
            n.parse::<u64>().unwrap(),
            expected,
            "token missing or duplicated"
        );
        expected += 1;
        latencies.push((received - sent.parse::<u128>().unwrap()) as f64 / 1000.0);
    }
    let (tokens, _) = parse_model(model);
    assert_eq!(expected - 1, tokens, "stream ended early");
    latencies
}

struct Outcome {
    latencies: Vec<f64>,
    tokens_per_sec: f64,
}

async fn run(base: &str, model: &str, streams: usize) -> Outcome {
    let client = Arc::new(
        reqwest::Client::builder()
            .pool_max_idle_per_host(streams)
            .build()
            .unwrap(),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, base, model) = (Arc::clone(&client), base.to_owned(), model.to_owned());
            tokio::spawn(async move { read_stream(&client, &base, &model).await })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let tokens_per_sec = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Outcome {
        latencies,
        tokens_per_sec,
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let redis = args
        .iter()
        .position(|a| a == "--redis")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let upstream = timed_upstream().await;
    let mut targets = vec![
        ("direct".to_owned(), format!("http://{upstream}"), ""),
        (
            "tokenrelay (memory)".to_owned(),
            format!("http://{}", tokenrelay(upstream, "memory").await),
            "openai/",
        ),
    ];
    if let Some(url) = &redis {
        let addr = tokenrelay(upstream, url).await;
        targets.push((
            "tokenrelay (redis)".to_owned(),
            format!("http://{addr}"),
            "openai/",
        ));
    }
    let scenarios = [
        ("1 stream, 200 tokens at 10 ms", "200t-10ms", 1),
        ("100 streams, 100 tokens at 20 ms", "100t-20ms", 100),
        (
            "20 streams, 5000 tokens as fast as possible",
            "5000t-0ms",
            20,
        ),
    ];
    println!(
        "| scenario | target | p50 µs | p90 µs | p99 µs | max µs | tokens/s | p50 × direct | p99 × direct |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, model, streams) in scenarios {
        // Warm up connections and code paths.
        for (_, base, prefix) in &targets {
            run(base, &format!("{prefix}5t-0ms"), 2).await;
        }
        let mut direct: Option<(f64, f64)> = None;
        for (target, base, prefix) in &targets {
            let outcome = run(base, &format!("{prefix}{model}"), streams).await;
            let l = &outcome.latencies;
            let (p50, p99) = (pct(l, 0.5), pct(l, 0.99));
            let (r50, r99) = direct.map_or((1.0, 1.0), |(d50, d99)| (p50 / d50, p99 / d99));
            direct.get_or_insert((p50, p99));
            println!(
                "| {name} | {target} | {p50:.0} | {:.0} | {p99:.0} | {:.0} | {:.0} | {r50:.2} | {r99:.2} |",
                pct(l, 0.9),
                l[l.len() - 1],
                outcome.tokens_per_sec,
            );
        }
    }
}
