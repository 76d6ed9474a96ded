//! Any upstream, any client format: the translation matrix, resume inside each format, and
//! what real client parsers require of each format (checked with an SSE parser written here,
//! independent of the server's encoder).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::support::{FakeUpstream, Reply, TestApp, chat, spawn_app_with, test_config};

/// One dispatched SSE event, as a WHATWG parser sees it, plus what the raw bytes showed.
#[derive(Debug, Clone, Default)]
struct Frame {
    id: String,
    event: String,
    data: String,
}

/// A spec parser that also flags what trips real clients: openai-python dispatches an empty
/// event on any blank line once an id was seen; AG-UI splits on `\n\n` only (no CR).
struct Parsed {
    frames: Vec<Frame>,
    empty_dispatches: usize,
    has_cr: bool,
}

fn parse(raw: &[u8]) -> Parsed {
    let text = std::str::from_utf8(raw).expect("UTF-8 body");
    let has_cr = text.contains('\r');
    let mut frames = Vec::new();
    let mut empty_dispatches = 0;
    let (mut data, mut event, mut id_seen, mut current_id) =
        (None::<String>, String::new(), false, String::new());
    // Only complete lines: a trailing fragment is not a line yet.
    for line in text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
    {
        if line.is_empty() {
            match data.take() {
                Some(d) => frames.push(Frame {
                    id: current_id.clone(),
                    event: std::mem::take(&mut event),
                    data: d,
                }),
                None if id_seen => empty_dispatches += 1,
                None => {}
            }
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line
            .split_once(':')
            .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "data" => {
                let d = data.get_or_insert_with(String::new);
                if !d.is_empty() {
                    d.push('\n');
                }
                d.push_str(value);
            }
            "event" => event = value.to_owned(),
            "id" => {
                id_seen = true;
                current_id = value.to_owned();
            }
            _ => {}
        }
    }
    Parsed {
        frames,
        empty_dispatches,
        has_cr,
    }
}

/// What a client of each format reassembles.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    tools: BTreeMap<String, (String, String)>,
    usage: Option<(u64, u64)>,
}

fn assemble(format: &str, frames: &[Frame]) -> Answer {
    let mut a = Answer::default();
    // Tool keys: the call id where the format has one on every fragment, else an index.
    let mut by_index: BTreeMap<String, String> = BTreeMap::new();
    for f in frames {
        if f.data == "[DONE]" || f.event == "reset" {
            continue;
        }
        let v: Value = serde_json::from_str(&f.data)
            .unwrap_or_else(|e| panic!("{format}: not JSON: {} ({e})", f.data));
        match format {
            "native" => match f.event.as_str() {
                "message.delta" => a.text.push_str(v["text"].as_str().unwrap()),
                "tool_call.delta" => {
                    let key = v["index"].to_string();
                    if let Some(id) = v["id"].as_str() {
                        by_index.insert(key.clone(), id.to_owned());
                        a.tools.insert(
                            id.to_owned(),
                            (v["name"].as_str().unwrap_or("").to_owned(), String::new()),
                        );
                    }
                    let id = &by_index[&key];
                    a.tools
                        .get_mut(id)
                        .unwrap()
                        .1
                        .push_str(v["arguments"].as_str().unwrap_or(""));
                }
                "usage" => {
                    a.usage = Some((
                        v["input_tokens"].as_u64().unwrap(),
                        v["output_tokens"].as_u64().unwrap(),
                    ))
                }
                _ => {}
            },
            "openai" => {
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    a.usage = Some((
                        u["prompt_tokens"].as_u64().unwrap(),
                        u["completion_tokens"].as_u64().unwrap(),
                    ));
                }
                for choice in v["choices"].as_array().into_iter().flatten() {
                    let delta = &choice["delta"];
                    a.text.push_str(delta["content"].as_str().unwrap_or(""));
                    for call in delta["tool_calls"].as_array().into_iter().flatten() {
                        let key = call["index"].to_string();
                        if let Some(id) = call["id"].as_str() {
                            by_index.insert(key.clone(), id.to_owned());
                            a.tools.insert(
                                id.to_owned(),
                                (
                                    call["function"]["name"].as_str().unwrap_or("").to_owned(),
                                    String::new(),
                                ),
                            );
                        }
                        let id = &by_index[&key];
                        a.tools
                            .get_mut(id)
                            .unwrap()
                            .1
                            .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
                    }
                }
            }
            "anthropic" => match v["type"].as_str().unwrap() {
                "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                    let block = &v["content_block"];
                    by_index.insert(
                        v["index"].to_string(),
                        block["id"].as_str().unwrap().to_owned(),
                    );
                    a.tools.insert(
                        block["id"].as_str().unwrap().to_owned(),
                        (block["name"].as_str().unwrap().to_owned(), String::new()),
                    );
                }
                "content_block_delta" => {
                    let delta = &v["delta"];
                    match delta["type"].as_str().unwrap() {
                        "text_delta" => a.text.push_str(delta["text"].as_str().unwrap()),
                        "input_json_delta" => {
                            let id = &by_index[&v["index"].to_string()];
                            a.tools
                                .get_mut(id)
                                .unwrap()
                                .1
                                .push_str(delta["partial_json"].as_str().unwrap());
                        }
                        _ => {}
                    }
                }
                "message_delta" => {
                    let u = &v["usage"];
                    a.usage = Some((
                        u["input_tokens"].as_u64().unwrap(),
                        u["output_tokens"].as_u64().unwrap(),
                    ));
                }
                _ => {}
            },
            "agui" => match v["type"].as_str().unwrap() {
                "TEXT_MESSAGE_CONTENT" => a.text.push_str(v["delta"].as_str().unwrap()),
                "TOOL_CALL_START" => {
                    a.tools.insert(
                        v["toolCallId"].as_str().unwrap().to_owned(),
                        (
                            v["toolCallName"].as_str().unwrap().to_owned(),
                            String::new(),
                        ),
                    );
                }
                "TOOL_CALL_ARGS" => a
                    .tools
                    .get_mut(v["toolCallId"].as_str().unwrap())
                    .unwrap()
                    .1
                    .push_str(v["delta"].as_str().unwrap()),
                "RUN_FINISHED" => {
                    let u = &v["usage"][0];
                    a.usage = u["inputTokens"].as_u64().zip(u["outputTokens"].as_u64());
                }
                _ => {}
            },
            other => panic!("unknown format {other}"),
        }
    }
    a
}

/// The rules each client library enforces, checked on the whole (possibly resumed) read.
fn check_client_rules(format: &str, parsed: &Parsed, completed: bool) {
    let frames = &parsed.frames;
    assert_eq!(
        parsed.empty_dispatches, 0,
        "{format}: an empty event would be dispatched"
    );
    assert!(
        frames.iter().all(|f| !f.id.is_empty()),
        "{format}: every frame has an id"
    );
    match format {
        "openai" => {
            let done = frames.iter().position(|f| f.data == "[DONE]");
            assert_eq!(
                done.is_some(),
                completed,
                "openai: [DONE] exactly after a completion"
            );
            if let Some(at) = done {
                assert_eq!(at, frames.len() - 1, "openai: nothing after [DONE]");
            }
            for f in frames.iter().filter(|f| f.data != "[DONE]") {
                let v: Value = serde_json::from_str(&f.data).unwrap();
                assert!(
                    v.get("choices").is_some() || v.get("error").is_some(),
                    "openai: {}",
                    f.data
                );
                assert!(f.event.is_empty(), "openai: no event names");
            }
        }
        "anthropic" => {
            assert!(
                frames.iter().all(|f| !f.event.is_empty()),
                "anthropic: every frame is named"
            );
            for f in frames {
                let v: Value = serde_json::from_str(&f.data).unwrap();
                assert_eq!(v["type"], f.event.as_str(), "anthropic: name matches type");
            }
            assert_eq!(frames[0].event, "message_start");
            // Blocks open in index order, once each, and deltas go to opened blocks.
            let mut next = 0;
            for f in frames {
                let v: Value = serde_json::from_str(&f.data).unwrap();
                match f.event.as_str() {
                    "content_block_start" => {
                        assert_eq!(v["index"], next, "anthropic: block opened out of order");
                        next += 1;
                    }
                    "content_block_delta" | "content_block_stop" => {
                        assert!(
                            v["index"].as_u64().unwrap() < next,
                            "anthropic: unknown block"
                        );
                    }
                    _ => {}
                }
            }
            assert_eq!(
                frames.iter().filter(|f| f.event == "message_start").count(),
                1
            );
            if completed {
                assert_eq!(frames.last().unwrap().event, "message_stop");
            }
        }
        "agui" => {
            assert!(!parsed.has_cr, "agui: LF-only framing");
            let mut open_messages = std::collections::HashSet::new();
            let mut open_tools = std::collections::HashSet::new();
            let mut ended = false;
            for (i, f) in frames.iter().enumerate() {
                assert!(!ended, "agui: nothing after RUN_FINISHED/RUN_ERROR");
                let v: Value = serde_json::from_str(&f.data).unwrap();
                let kind = v["type"].as_str().unwrap();
                if i == 0 {
                    assert!(
                        kind == "RUN_STARTED" || kind == "RUN_ERROR",
                        "agui: first is {kind}"
                    );
                }
                let message = v["messageId"].as_str().unwrap_or("").to_owned();
                let tool = v["toolCallId"].as_str().unwrap_or("").to_owned();
                match kind {
                    "RUN_STARTED" => assert_eq!(i, 0, "agui: one RUN_STARTED"),
                    "TEXT_MESSAGE_START" | "REASONING_MESSAGE_START" => {
                        assert!(open_messages.insert(message))
                    }
                    "TEXT_MESSAGE_CONTENT" | "REASONING_MESSAGE_CONTENT" => {
                        assert!(open_messages.contains(&message));
                        assert!(
                            !v["delta"].as_str().unwrap().is_empty(),
                            "agui: no empty deltas"
                        );
                    }
                    "TEXT_MESSAGE_END" | "REASONING_MESSAGE_END" => {
                        assert!(open_messages.remove(&message))
                    }
                    "TOOL_CALL_START" => assert!(open_tools.insert(tool)),
                    "TOOL_CALL_ARGS" => assert!(open_tools.contains(&tool)),
                    "TOOL_CALL_END" => assert!(open_tools.remove(&tool)),
                    "RUN_FINISHED" => {
                        assert!(
                            open_messages.is_empty() && open_tools.is_empty(),
                            "agui: finished with open items"
                        );
                        ended = true;
                    }
                    "RUN_ERROR" => ended = true,
                    _ => {}
                }
            }
            assert!(ended, "agui: the run ends");
        }
        _ => {}
    }
}

const FORMATS: [&str; 4] = ["native", "openai", "anthropic", "agui"];

fn fixture(dir: &str, name: &str) -> Reply {
    let bytes = std::fs::read(format!(
        "{}/tests/fixtures/{dir}/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Reply::Stream {
        chunks: vec![Bytes::from(bytes)],
        gap: Duration::ZERO,
        hang: false,
    }
}

/// Reads the stream in `format`, hangs up after about `drop_after` frames and resumes from
/// the last id received; returns the bytes of both connections, concatenated. The cut falls
/// where a new native event begins: the frames of one event share its id and are written
/// together.
async fn read_with_resume(app: &TestApp, id: &str, format: &str, drop_after: usize) -> Vec<u8> {
    let query = format!("?format={format}");
    let first = app.events(id, None, &query).await;
    assert_eq!(first.status(), 200);
    let raw = first.bytes().await.unwrap().to_vec();
    let text = String::from_utf8(raw).unwrap();
    let frames: Vec<&str> = text.split_inclusive("\n\n").collect();
    let parsed: Vec<Frame> = frames
        .iter()
        .map(|f| {
            parse(f.as_bytes())
                .frames
                .into_iter()
                .next()
                .unwrap_or_default()
        })
        .collect();
    let mut keep = drop_after.min(frames.len());
    while keep < frames.len() && keep > 0 && parsed[keep].id == parsed[keep - 1].id {
        keep += 1;
    }
    let mut raw: Vec<u8> = frames[..keep].concat().into_bytes();
    if keep == frames.len() {
        return raw;
    }
    let last = parsed[keep - 1].id.clone();
    let second = app.events(id, Some(&last), &query).await;
    assert_eq!(second.status(), 200, "{format}: resume");
    raw.extend_from_slice(&second.bytes().await.unwrap());
    raw
}

#[tokio::test]
async fn every_upstream_reaches_every_client_format_intact_even_across_a_resume() {
    let cases = [
        (
            "openai",
            "openai/gpt-4o",
            fixture("openai", "tool_call_fragments"),
        ),
        (
            "openai",
            "openai/gpt-4o",
            fixture("openai", "parallel_tools"),
        ),
        (
            "anthropic",
            "anthropic/claude-sonnet-4-5",
            fixture("anthropic", "tool_use"),
        ),
        (
            "anthropic",
            "anthropic/claude-sonnet-4-5",
            fixture("anthropic", "thinking"),
        ),
        (
            "gemini",
            "gemini/gemini-2.5-flash",
            fixture("gemini", "function_call"),
        ),
        (
            "gemini",
            "gemini/gemini-2.5-flash",
            fixture("gemini", "text_crlf"),
        ),
    ];
    for (upstream_kind, model, reply) in cases {
        let upstream = FakeUpstream::start(reply).await;
        let app = spawn_app_with(test_config(), Some(&upstream)).await;
        let mut request = chat(model, false);
        request["stream_options"] = json!({"include_usage": true});
        let created = app
            .post("/v1/streams", &json!({"kind": "chat", "request": request}))
            .await;
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let status = app.wait_finished(&id, Duration::from_secs(10)).await;
        assert_eq!(status["status"], "completed", "{upstream_kind}");
        let agg = &status["aggregate"];
        let mut want = Answer {
            text: agg["choices"][0]["text"].as_str().unwrap_or("").to_owned(),
            tools: BTreeMap::new(),
            usage: agg["usage"]["input_tokens"]
                .as_u64()
                .zip(agg["usage"]["output_tokens"].as_u64()),
        };
        for call in agg["tool_calls"].as_array().into_iter().flatten() {
            let args = call["arguments"].as_str().unwrap().to_owned();
            want.tools.insert(
                call["id"].as_str().unwrap().to_owned(),
                (call["name"].as_str().unwrap().to_owned(), args),
            );
        }
        for format in FORMATS {
            for drop_after in [usize::MAX, 2, 3, 5, 8] {
                let ctx =
                    format!("{upstream_kind} upstream → {format} client (drop after {drop_after})");
                let raw = read_with_resume(&app, &id, format, drop_after).await;
                let parsed = parse(&raw);
                check_client_rules(format, &parsed, true);
                let mut got = assemble(format, &parsed.frames);
                if want.usage.is_none() {
                    // Nothing to compare: this upstream reported no usage.
                    got.usage = None;
                }
                assert_eq!(got, want, "{ctx}");
            }
        }
    }
}

#[tokio::test]
async fn an_agui_reset_comes_after_run_started() {
    let app = crate::support::spawn_app().await;
    let (id, _) = app.create_stream("mock/3t-0ms").await;
    app.wait_finished(&id, Duration::from_secs(5)).await;
    let raw = app
        .events(&id, Some("garbage"), "?format=agui")
        .await
        .bytes()
        .await
        .unwrap();
    let parsed = parse(&raw);
    let kinds: Vec<Value> = parsed
        .frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(&f.data).unwrap()["type"].clone())
        .collect();
    assert_eq!(kinds[0], "RUN_STARTED");
    assert_eq!(kinds[1], "CUSTOM");
    check_client_rules("agui", &parsed, true);
}

#[tokio::test]
async fn failures_and_keepalives_follow_each_formats_rules() {
    // A cut upstream: each format ends with its failure form.
    let upstream = FakeUpstream::start(fixture("anthropic", "cut_without_stop")).await;
    let mut config = test_config();
    config.keepalive_secs = 1;
    let app = spawn_app_with(config, Some(&upstream)).await;
    let (id, _) = app.create_stream("anthropic/claude").await;
    let status = app.wait_finished(&id, Duration::from_secs(10)).await;
    assert_eq!(status["status"], "failed");
    assert!(
        status["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "usage counted so far is kept"
    );
    for format in FORMATS {
        let raw = app
            .events(&id, None, &format!("?format={format}"))
            .await
            .bytes()
            .await
            .unwrap();
        let parsed = parse(&raw);
        check_client_rules(format, &parsed, false);
        let last: Value = serde_json::from_str(&parsed.frames.last().unwrap().data).unwrap();
        match format {
            "native" => assert_eq!(last["error"]["code"], "upstream_truncated"),
            "openai" => assert_eq!(last["error"]["code"], "upstream_truncated"),
            "anthropic" => assert_eq!(last["type"], "error"),
            _ => assert_eq!(last["type"], "RUN_ERROR"),
        }
    }
    // Keepalives mid-stream never make an empty event for any client.
    let (slow, _) = app.create_stream("mock/3t-1200ms").await;
    let readers: Vec<_> = FORMATS
        .iter()
        .map(|format| {
            let request = app
                .client
                .get(app.url(&format!("/v1/streams/{slow}/events?format={format}")));
            tokio::spawn(async move {
                (
                    *format,
                    request.send().await.unwrap().bytes().await.unwrap(),
                )
            })
        })
        .collect();
    for reader in readers {
        let (format, raw) = reader.await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains(":\n"), "{format}: a keepalive was sent");
        check_client_rules(format, &parse(&raw), true);
    }
}
