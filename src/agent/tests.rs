//! AG-UI in and out, and the checks a publish batch goes through.

use serde_json::{Value, json};

use super::input::{BatchError, parse_batch};
use crate::event::{Epoch, Event, EventBody, Format, StreamId, StreamKind, Usage};
use crate::sse::{FrameWriter, Renderer};
use crate::store::StreamMeta;

const EVERY_TYPE: &str = include_str!("../../tests/fixtures/agui/every_type.json");
const RUN_ERROR: &str = include_str!("../../tests/fixtures/agui/run_error.json");

/// The AG-UI events a subscriber reads for `bodies` (after the stream's `stream.started`).
fn agui_out(bodies: &[EventBody]) -> Vec<Value> {
    let (id, epoch) = (StreamId::random(), Epoch::random());
    let mut renderer = Renderer::new(Format::Agui, &id, &StreamMeta::test(StreamKind::Agent));
    let mut out = FrameWriter::new(None);
    let started = EventBody::Started(crate::event::Started {
        stream_id: id.to_string(),
        kind: StreamKind::Agent,
        model: "agent".into(),
        provider: "publisher".into(),
        created_at: 0,
    });
    for (seq, body) in std::iter::once(&started).chain(bodies).enumerate() {
        let event = Event::new(seq as u64 + 1, 0, body.clone());
        renderer.event(&epoch, &event, &mut out);
    }
    let text = String::from_utf8(out.take().to_vec()).unwrap_or_default();
    text.split("\n\n")
        .filter_map(|frame| frame.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or(Value::Null))
        .collect()
}

fn parse(json: &str) -> Vec<EventBody> {
    let value: Value = serde_json::from_str(json).expect("test JSON");
    parse_batch(value, 1000).expect("a valid batch").events
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn every_agui_type_comes_back_as_it_was_sent() {
    let sent: Vec<Value> = serde_json::from_str(EVERY_TYPE).expect("fixture");
    let native = parse(EVERY_TYPE);
    assert_eq!(native.len(), 36);
    assert_eq!(native.len(), sent.len());
    assert_eq!(agui_out(&native), sent);
}

#[test]
fn the_publishers_run_started_comes_before_the_state_given_at_creation() {
    let initial = EventBody::StateSnapshot(crate::event::StateSnapshot {
        state: json!({"progress": 0}),
        ..Default::default()
    });
    let mut bodies = vec![initial];
    bodies.extend(parse(
        r#"[{"type":"RUN_STARTED","threadId":"th","runId":"ru"},{"type":"STEP_STARTED","stepName":"s"}]"#,
    ));
    let out = agui_out(&bodies);
    assert_eq!(
        out,
        [
            json!({"type": "RUN_STARTED", "threadId": "th", "runId": "ru"}),
            json!({"type": "STATE_SNAPSHOT", "snapshot": {"progress": 0}}),
            json!({"type": "STEP_STARTED", "stepName": "s"}),
        ]
    );
}

#[test]
fn agui_types_map_to_the_native_events_that_carry_them() {
    let names: Vec<&str> = parse(EVERY_TYPE).iter().map(EventBody::type_name).collect();
    let expected = [
        "run.started",
        "state.snapshot",
        "step.started",
        "custom",
        "custom",
        "reasoning.delta",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "step.finished",
        "step.started",
        "message.started",
        "message.delta",
        "message.delta",
        "tool_call.started",
        "tool_call.args",
        "tool_call.args",
        "tool_call.finished",
        "tool_call.result",
        "custom",
        "message.finished",
        "custom",
        "state.delta",
        "custom",
        "custom",
        "custom",
        "custom",
        "custom",
        "step.finished",
        "stream.completed",
    ];
    assert_eq!(names, expected);
    let native = parse(EVERY_TYPE);
    // Native readers see the text under `text` and AG-UI's fields beside it.
    let delta = serde_json::to_value(&native[18]).unwrap_or_default();
    assert_eq!(
        delta,
        json!({"type": "message.delta", "data": {"text": "Looking up ", "index": 0, "messageId": "m1"}})
    );
    let EventBody::Completed(done) = &native[35] else {
        panic!("RUN_FINISHED is stream.completed")
    };
    let usage = Usage {
        input_tokens: 10,
        output_tokens: 5,
        total_tokens: 15,
    };
    assert_eq!(done.usage, Some(usage));
    let EventBody::Custom(unknown) = &native[29] else {
        panic!("MESSAGES_SNAPSHOT travels as custom")
    };
    assert_eq!(unknown.name, "agui.MESSAGES_SNAPSHOT");
}

#[test]
fn a_run_error_is_a_failure_with_its_code_and_comes_back_whole() {
    let sent: Vec<Value> = serde_json::from_str(RUN_ERROR).expect("fixture");
    let native = parse(RUN_ERROR);
    let EventBody::Failed(failed) = &native[2] else {
        panic!("RUN_ERROR is stream.failed")
    };
    assert_eq!(failed.error.code, "tool_unavailable");
    assert_eq!(failed.error.message, "search backend down");
    assert_eq!(failed.usage.map(|u| u.total_tokens), Some(3));
    // RUN_ERROR may come at any time: the open step is not closed first.
    assert_eq!(agui_out(&native), sent);
    let no_code = parse(r#"{"type":"RUN_ERROR","message":"x"}"#);
    assert!(matches!(&no_code[0], EventBody::Failed(f) if f.error.code == "agent_error"));
}

#[test]
fn the_renderer_keeps_agui_lifecycle_rules_for_sloppy_publishers() {
    // Content before its START, a step finished twice, RUN_FINISHED with things open.
    let native = parse(
        r#"[
        {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"hi"},
        {"type":"STEP_FINISHED","stepName":"s"},
        {"type":"STEP_STARTED","stepName":"t"},
        {"type":"STEP_STARTED","stepName":"t"},
        {"type":"TOOL_CALL_ARGS","toolCallId":"c1","delta":"{}"},
        {"type":"RUN_FINISHED","threadId":"th","runId":"ru"}
    ]"#,
    );
    assert_eq!(
        types(&agui_out(&native)),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "STEP_STARTED",
            "STEP_FINISHED",
            "STEP_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "TEXT_MESSAGE_END",
            "STEP_FINISHED",
            "RUN_FINISHED",
        ]
    );
}

#[test]
fn ids_are_never_reopened_and_reasoning_is_closed_before_the_end() {
    let native = parse(
        r#"[
        {"type":"TEXT_MESSAGE_START","messageId":"m1"},
        {"type":"TEXT_MESSAGE_END","messageId":"m1"},
        {"type":"TEXT_MESSAGE_CONTENT","messageId":"m1","delta":"late"},
        {"type":"TEXT_MESSAGE_START","messageId":"m1"},
        {"type":"TOOL_CALL_START","toolCallId":"c1","toolCallName":"f"},
        {"type":"TOOL_CALL_END","toolCallId":"c1"},
        {"type":"TOOL_CALL_ARGS","toolCallId":"c1","delta":"{}"},
        {"type":"REASONING_START","messageId":"r1"},
        {"type":"REASONING_MESSAGE_CONTENT","messageId":"r1","delta":"hmm"},
        {"type":"RUN_FINISHED","threadId":"th","runId":"ru"}
    ]"#,
    );
    assert_eq!(
        types(&agui_out(&native)),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_END",
            "TOOL_CALL_START",
            "TOOL_CALL_END",
            "REASONING_START",
            "REASONING_MESSAGE_START",
            "REASONING_MESSAGE_CONTENT",
            "REASONING_MESSAGE_END",
            "REASONING_END",
            "RUN_FINISHED",
        ]
    );
}

#[test]
fn a_custom_event_can_never_pose_as_a_lifecycle_event() {
    // Publishers cannot send these names; a log written some other way still renders safely.
    let posing = EventBody::Custom(crate::event::Custom {
        name: "agui.RUN_FINISHED".into(),
        value: json!({"threadId": "x", "runId": "y"}),
        ..Default::default()
    });
    let bare_end = EventBody::Completed(crate::event::Completed {
        extra: serde_json::Map::from_iter([("agui".to_owned(), json!({}))]),
        ..Default::default()
    });
    let out = agui_out(&[posing, bare_end]);
    assert_eq!(types(&out), ["RUN_STARTED", "CUSTOM", "RUN_FINISHED"]);
    assert!(out[2]["threadId"].is_string(), "{}", out[2]);
    let (_, field, _) =
        refused(json!({"type": "CUSTOM", "name": "agui.RUN_FINISHED", "value": {}}));
    assert_eq!(field.as_deref(), Some("name"));
    let (_, field, _) = refused(json!({"type": "custom", "data": {"name": "agui.X", "value": {}}}));
    assert_eq!(field.as_deref(), Some("data.name"));
    let (_, field, _) =
        refused(json!({"type": "stream.completed", "data": {"finish_reason": null, "agui": {}}}));
    assert_eq!(field.as_deref(), Some("data.agui"));
}

fn refused(body: Value) -> (usize, Option<String>, String) {
    match parse_batch(body, 1000) {
        Err(BatchError::Invalid {
            index,
            field,
            message,
        }) => (index, field, message),
        other => panic!("expected an invalid event, got {other:?}"),
    }
}

#[test]
fn a_bad_event_is_named_by_index_and_field() {
    let batch = json!([
        {"type": "STEP_STARTED", "stepName": "a"},
        {"type": "step.finished", "data": {"name": "a"}},
        {"type": "TEXT_MESSAGE_CONTENT", "delta": "no id"},
    ]);
    let (index, field, _) = refused(batch);
    assert_eq!((index, field.as_deref()), (2, Some("messageId")));
    let (_, field, _) = refused(json!([{"type": "tool_call.args", "data": {"toolCallId": 1}}]));
    assert_eq!(field.as_deref(), Some("data.toolCallId"));
    let (_, field, _) = refused(json!({"type": "state.delta", "data": {"patch": {"op": "x"}}}));
    assert_eq!(field.as_deref(), Some("data.patch"));
    let (_, field, _) = refused(json!({"type": "STATE_DELTA", "delta": [{"op": "jump"}]}));
    assert_eq!(field.as_deref(), Some("delta"));
    let (_, field, message) = refused(json!({"type": "stream.started", "data": {}}));
    assert_eq!(field.as_deref(), Some("type"));
    assert!(message.contains("appended by tokenrelay"), "{message}");
    let (_, field, _) = refused(json!({"type": "made.up"}));
    assert_eq!(field.as_deref(), Some("type"));
    let (_, field, _) =
        refused(json!({"type": "custom", "data": {"name": "x", "value": 1}, "extra": 1}));
    assert_eq!(field.as_deref(), Some("extra"));
    let (_, field, _) = refused(
        json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "x", "text": "clash"}),
    );
    assert_eq!(field.as_deref(), Some("text"));
    let (index, field, _) = refused(json!([{"type": "STEP_STARTED", "stepName": "a"}, 7]));
    assert_eq!((index, field), (1, None));
}

#[test]
fn the_terminal_event_ends_the_batch() {
    let batch = json!([
        {"type": "RUN_FINISHED", "threadId": "t", "runId": "r"},
        {"type": "CUSTOM", "name": "late", "value": 1},
    ]);
    let (index, field, message) = refused(batch);
    assert_eq!((index, field), (1, None));
    assert!(message.contains("terminal event at index 0"), "{message}");
}

#[test]
fn batches_are_bounded_and_not_empty() {
    assert_eq!(parse_batch(json!([]), 10).err(), Some(BatchError::Empty));
    let many = Value::Array(vec![json!({"type": "CUSTOM", "name": "x"}); 11]);
    assert_eq!(
        parse_batch(many, 10).err(),
        Some(BatchError::TooMany { max: 10 })
    );
}

#[test]
fn native_events_pass_as_sent() {
    let batch = json!([
        {"type": "step.started", "data": {"name": "fetch"}},
        {"type": "state.delta", "data": {"patch": [{"op": "add", "path": "/a", "value": 1}]}, "id": "ignored"},
        {"type": "message.delta", "data": {"text": "hi", "index": 0}},
        {"type": "stream.completed", "data": {"finish_reason": "stop"}},
    ]);
    let events = parse_batch(batch, 10).map(|b| b.events).unwrap_or_default();
    let names: Vec<&str> = events.iter().map(EventBody::type_name).collect();
    assert_eq!(
        names,
        [
            "step.started",
            "state.delta",
            "message.delta",
            "stream.completed"
        ]
    );
}
