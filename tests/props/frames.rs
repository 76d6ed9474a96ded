//! SSE encoder (SPEC §6): whatever the id, event name and data, each frame reads back as
//! exactly one event with exactly the intended fields, and its data comes back with only
//! line ends normalised to LF (the one thing SSE cannot carry). Keepalives add no events.

use proptest::prelude::*;
use tokenrelay::sse::{FrameWriter, KEEPALIVE};

use crate::strategies::text;
use crate::whatwg::parse;

#[derive(Debug, Clone)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

fn frame() -> impl Strategy<Value = Frame> {
    (prop::option::of(text()), prop::option::of(text()), text())
        .prop_map(|(id, event, data)| Frame { id, event, data })
}

/// What SPEC §6 says survives: CR, LF and NUL dropped from `id` and `event`.
fn single_line(value: &str) -> String {
    value.replace(['\r', '\n', '\0'], "")
}

/// Line ends of any kind become LF: SSE splits data lines on all three and joins with LF.
fn normalised(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

/// The field lines a frame must produce, in order.
fn expected_fields(frame: &Frame, retry: Option<u64>) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if let Some(retry) = retry {
        fields.push(("retry".to_owned(), retry.to_string()));
    }
    if let Some(id) = &frame.id {
        fields.push(("id".to_owned(), single_line(id)));
    }
    if let Some(event) = &frame.event {
        fields.push(("event".to_owned(), single_line(event)));
    }
    for line in normalised(&frame.data).split('\n') {
        fields.push(("data".to_owned(), line.to_owned()));
    }
    fields
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_frame_reads_back_as_one_event_with_exactly_its_fields(
        frames in prop::collection::vec(frame(), 1..5),
        retry in prop::option::of(0u64..100_000),
        keepalive_after in prop::collection::vec(any::<bool>(), 5),
    ) {
        let mut writer = FrameWriter::new(retry);
        let mut body = Vec::new();
        for (frame, keepalive) in frames.iter().zip(&keepalive_after) {
            writer.frame(frame.id.as_deref(), frame.event.as_deref(), &frame.data);
            body.extend_from_slice(&writer.take());
            if *keepalive {
                body.extend_from_slice(KEEPALIVE);
            }
        }
        let parsed = parse(&body);
        prop_assert_eq!(parsed.blocks.len(), frames.len(), "body: {:?}", String::from_utf8_lossy(&body));
        prop_assert!(parsed.unfinished.is_empty() && parsed.tail.is_empty());
        prop_assert!(parsed.comments.iter().all(String::is_empty), "only bare keepalives");
        prop_assert_eq!(parsed.retry, retry);
        let mut last_id = String::new();
        for (i, (frame, block)) in frames.iter().zip(&parsed.blocks).enumerate() {
            let first_retry = if i == 0 { retry } else { None };
            prop_assert_eq!(&block.fields, &expected_fields(frame, first_retry));
            prop_assert_eq!(block.data.clone(), Some(normalised(&frame.data)));
            prop_assert_eq!(&block.event, &frame.event.as_deref().map(single_line).unwrap_or_default());
            if let Some(id) = &frame.id {
                last_id = single_line(id);
            }
            prop_assert_eq!(&block.last_id, &last_id);
        }
    }
}
