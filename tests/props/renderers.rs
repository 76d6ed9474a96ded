//! Renderers (SPEC §4, §6): any native log with any text, rendered in each client format,
//! reads back frame by frame with one JSON `data` line each (or `[DONE]`), the id of the
//! native event it renders, no field a client does not expect, and the text intact.

use proptest::prelude::*;
use serde_json::{Value, json};
use tokenrelay::event::{
    Cancelled, Completed, Custom, Epoch, Event, EventBody, Format, MessageDelta, Reasoning,
    Started, StreamId, StreamKind, ToolCallDelta,
};
use tokenrelay::sse::{FrameWriter, Renderer};
use tokenrelay::store::StreamMeta;

use crate::strategies::{json, text};
use crate::whatwg::parse;

pub fn meta(kind: StreamKind, format: Format) -> StreamMeta {
    StreamMeta {
        kind,
        model: "m".into(),
        provider: "p".into(),
        owner: "o".into(),
        created_at: 0,
        format,
        include_usage: true,
        read_token_hash: String::new(),
        write_token_hash: String::new(),
        request_hash: String::new(),
        feed: None,
        choices: 1,
    }
}

fn middle() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        4 => text().prop_map(|text| EventBody::MessageDelta(MessageDelta { text, ..Default::default() })),
        1 => text().prop_map(|text| EventBody::ReasoningDelta(Reasoning { text, ..Default::default() })),
        1 => (0u32..2, prop::option::of(text()), prop::option::of(text()), text()).prop_map(
            |(index, id, name, arguments)| EventBody::ToolCallDelta(ToolCallDelta { index, id, name, arguments }),
        ),
        1 => (text(), json()).prop_map(|(name, value)| EventBody::Custom(Custom { name, value, ..Default::default() })),
    ]
}

fn terminal() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        prop::option::of(text()).prop_map(|finish_reason| EventBody::Completed(Completed {
            finish_reason,
            ..Default::default()
        })),
        (text(), text()).prop_map(|(code, message)| EventBody::failed(code, message, true)),
        text().prop_map(|reason| EventBody::Cancelled(Cancelled { reason })),
    ]
}

/// The text a client of `format` reads from one frame's JSON.
fn shown_text<'a>(format: Format, event: &str, data: &'a Value) -> Option<&'a str> {
    match format {
        Format::Native => data.get("text").filter(|_| event == "message.delta"),
        Format::OpenAi => data.pointer("/choices/0/delta/content"),
        Format::Anthropic => data.pointer("/delta/text"),
        Format::Agui => data
            .get("delta")
            .filter(|_| data["type"] == "TEXT_MESSAGE_CONTENT"),
    }
    .and_then(Value::as_str)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_format_renders_one_clean_frame_per_output_and_keeps_the_text(
        bodies in prop::collection::vec(middle(), 0..8),
        end in prop::option::of(terminal()),
    ) {
        let (stream, epoch) = (StreamId::random(), Epoch::random());
        let started = EventBody::Started(Started {
            stream_id: stream.to_string(),
            kind: StreamKind::Chat,
            model: "m".into(),
            provider: "p".into(),
            created_at: 0,
        });
        let log: Vec<Event> = std::iter::once(started)
            .chain(bodies)
            .chain(end)
            .enumerate()
            .map(|(i, body)| Event::new(i as u64 + 1, 0, body))
            .collect();
        let sent: String = log
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::MessageDelta(d) => Some(d.text.as_str()),
                _ => None,
            })
            .collect();
        for format in [Format::Native, Format::OpenAi, Format::Anthropic, Format::Agui] {
            let mut renderer = Renderer::new(format, &stream, &meta(StreamKind::Chat, format));
            let mut out = FrameWriter::new(Some(1000));
            // Which native seq each output frame may carry: the event it was rendered from.
            let mut owners = Vec::new();
            let mut body = Vec::new();
            for event in &log {
                renderer.event(&epoch, event, &mut out);
                let chunk = out.take();
                owners.extend(std::iter::repeat_n(event.seq, parse(&chunk).blocks.len()));
                body.extend_from_slice(&chunk);
            }
            let parsed = parse(&body);
            prop_assert!(parsed.unfinished.is_empty() && parsed.tail.is_empty(), "{:?}", format);
            prop_assert_eq!(parsed.blocks.len(), owners.len());
            let mut shown = String::new();
            for (i, (block, seq)) in parsed.blocks.iter().zip(&owners).enumerate() {
                let names: Vec<&str> = block.fields.iter().map(|(n, _)| n.as_str()).collect();
                let expected_names: &[&str] = match (i, block.event.is_empty()) {
                    (0, true) => &["retry", "id", "data"],
                    (0, false) => &["retry", "id", "event", "data"],
                    (_, true) => &["id", "data"],
                    (_, false) => &["id", "event", "data"],
                };
                prop_assert_eq!(&names[..], expected_names, "{:?} frame {}", format, i);
                prop_assert_eq!(&block.last_id, &format!("{epoch}.{seq}"));
                let data = block.data.as_deref().unwrap_or_default();
                if data == "[DONE]" {
                    prop_assert_eq!(format, Format::OpenAi);
                    continue;
                }
                let value: Value = serde_json::from_str(data).map_err(|e| {
                    TestCaseError::fail(format!("{format:?}: data is not JSON ({e}): {data:?}"))
                })?;
                if format == Format::Anthropic {
                    prop_assert_eq!(json!(block.event), value["type"].clone());
                }
                shown.push_str(shown_text(format, &block.event, &value).unwrap_or_default());
            }
            prop_assert_eq!(&shown, &sent, "{:?}", format);
        }
    }
}
