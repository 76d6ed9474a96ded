use std::time::{Duration, Instant};

use super::*;
use crate::event::{EventBody, MessageDelta};

fn line_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn two_instances_never_count_into_each_other() {
    let (a, b) = (Metrics::new(), Metrics::new());
    let _open = a.subscriber_opened();
    let text = a.render();
    assert_eq!(line_value(&text, ACTIVE_SUBSCRIBERS), Some(1.0), "{text}");
    assert_eq!(line_value(&b.render(), ACTIVE_SUBSCRIBERS), Some(0.0));
}

#[test]
fn guards_count_while_held() {
    let m = Metrics::new();
    let guard = m.stream_started();
    assert_eq!(line_value(&m.render(), ACTIVE_STREAMS), Some(1.0));
    drop(guard);
    assert_eq!(line_value(&m.render(), ACTIVE_STREAMS), Some(0.0));
}

#[test]
fn appended_events_count_by_type() {
    let m = Metrics::new();
    let delta = EventBody::MessageDelta(MessageDelta::default());
    let events = [delta.clone(), delta, EventBody::cancelled("test")];
    m.events_appended(&Tally::of(&events));
    let text = m.render();
    let value = |t: &str| line_value(&text, &format!("{EVENTS}{{type=\"{t}\"}}"));
    assert_eq!(value("message.delta"), Some(2.0), "{text}");
    assert_eq!(value("stream.cancelled"), Some(1.0));
    assert_eq!(value("usage"), Some(0.0));
}

#[test]
fn model_labels_are_capped() {
    let m = Metrics::new();
    for n in 0..MAX_MODEL_LABELS {
        assert_eq!(
            m.model_label(&format!("openai/m{n}")),
            format!("openai/m{n}")
        );
    }
    assert_eq!(m.model_label("openai/one-too-many"), "other");
    assert_eq!(
        m.model_label("openai/m0"),
        "openai/m0",
        "known ones keep theirs"
    );
}

#[test]
fn latencies_land_in_sub_millisecond_buckets() {
    let m = Metrics::new();
    let mut received = vec![Instant::now()];
    m.delivered(&mut received);
    assert!(received.is_empty(), "the buffer is drained for reuse");
    m.first_token("mock/default", "mock", Duration::from_millis(30));
    let text = m.render();
    let count = format!("{EVENT_ADDED_LATENCY}_count");
    assert_eq!(line_value(&text, &count), Some(1.0), "{text}");
    assert!(text.contains(&format!("{EVENT_ADDED_LATENCY}_bucket{{le=\"0.0001\"}}")));
    assert!(text.contains(&format!(
        "{TIME_TO_FIRST_TOKEN}_bucket{{model=\"mock/default\",provider=\"mock\",le=\"0.05\"}} 1"
    )));
}

#[test]
fn every_native_type_is_on_the_fast_path() {
    let events = [
        EventBody::cancelled("x"),
        EventBody::failed("c", "m", false),
        EventBody::MessageDelta(MessageDelta::default()),
    ];
    let tally = Tally::of(&events);
    assert!(tally.other.is_empty());
}
