//! Prompt templates: rendering into the system message, errors, listing, SIGHUP reload.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::support::process::Instance;
use crate::support::{
    FakeUpstream, Reply, SseReader, chat, spawn_app, spawn_app_with, test_config,
};

fn answer() -> Reply {
    let chunks = vec![
        crate::support::fake_upstream::openai_chunk("ok"),
        Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    Reply::Stream {
        chunks,
        gap: Duration::ZERO,
        hang: false,
    }
}

#[tokio::test]
async fn a_prompt_becomes_the_first_system_message_and_is_not_sent_upstream() {
    let upstream = FakeUpstream::start(answer()).await;
    let app = spawn_app_with(test_config(), Some(&upstream)).await;
    let mut body = chat("openai/gpt-4o", false);
    body["prompt"] = json!({"name": "code-review", "variables": {"language": "Rust"}});
    let response = app.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let (_, sent) = upstream.requests().pop().unwrap();
    assert!(sent.get("prompt").is_none());
    assert_eq!(sent["messages"][0]["role"], "system");
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.starts_with("You are reviewing a Rust change."),
        "{system}"
    );
    assert!(
        system.contains("correctness, error handling"),
        "the default was used"
    );
    assert_eq!(sent["messages"][1]["content"], "Say something");

    // The same on /v1/messages, merged into Anthropic's `system`.
    let request = json!({
        "model": "anthropic/claude", "max_tokens": 10, "system": "Be terse.",
        "prompt": {"name": "summarize", "variables": {"bullets": 3}},
        "messages": [{"role": "user", "content": "text"}],
    });
    upstream.set_reply(Reply::Stream {
        chunks: vec![Bytes::from(
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/anthropic/text_with_ping.sse"
            ))
            .unwrap(),
        )],
        gap: Duration::ZERO,
        hang: false,
    });
    let response = app.post("/v1/messages", &request).await;
    assert_eq!(response.status(), 200);
    let (_, sent) = upstream.requests().pop().unwrap();
    assert!(sent.get("prompt").is_none());
    let system = sent["system"].as_str().unwrap();
    assert!(
        system.contains("at most 3 bullet points") && system.ends_with("Be terse."),
        "{system}"
    );
}

#[tokio::test]
async fn missing_variables_and_unknown_templates_have_their_codes() {
    let app = spawn_app().await;
    let mut body = chat("mock/default", false);
    body["prompt"] = json!({"name": "support-agent", "variables": {"product": "Acme"}});
    let response = app.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "prompt_variable_missing");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("policy")
    );
    body["prompt"] = json!({"name": "nope"});
    let response = app.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "prompt_not_found"
    );
    body["prompt"] = json!("support-agent");
    let response = app.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["param"],
        "prompt"
    );
}

#[tokio::test]
async fn templates_are_listed_with_their_variables() {
    let app = spawn_app().await;
    let list: Value = app
        .client
        .get(app.url("/v1/prompts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["code-review", "summarize", "support-agent"]);
    let one: Value = app
        .client
        .get(app.url("/v1/prompts/support-agent"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["variables"],
        json!(["escalation", "policy", "product", "tone"])
    );
    assert_eq!(one["defaults"]["tone"], "friendly and concise");
    assert!(one["template"].as_str().unwrap().contains("{{ product }}"));
    let missing = app
        .client
        .get(app.url("/v1/prompts/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn sighup_reloads_templates_without_dropping_a_running_stream() {
    let dir = std::env::temp_dir().join(format!("tr-prompts-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("greet.md"), "Hello {{ name }}.").unwrap();
    let config = format!("prompts_dir = \"{}\"\n", dir.display());
    let instance = Instance::start(&config, &[]).await;
    let client = reqwest::Client::new();
    let response = client
        .post(instance.url("/v1/chat/completions"))
        .json(&chat("mock/30t-100ms", true))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(response);
    let mut frames = vec![reader.next().await.unwrap(), reader.next().await.unwrap()];

    std::fs::write(dir.join("greet.md"), "Good evening {{ name }}.").unwrap();
    instance.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let prompt: Value = client
            .get(instance.url("/v1/prompts/greet"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if prompt["template"] == "Good evening {{ name }}." {
            break;
        }
        assert!(Instant::now() < deadline, "the template was not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while let Some(frame) = reader.next().await {
        frames.push(frame);
    }
    assert_eq!(
        frames.last().unwrap().data,
        "[DONE]",
        "the stream ran to its end"
    );
    let tokens = frames.iter().filter(|f| f.data.contains("\"tok")).count();
    assert_eq!(tokens, 30);
    std::fs::remove_dir_all(&dir).unwrap();
}
