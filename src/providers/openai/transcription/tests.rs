//! The transcription adapter on recorded-format streams.

use bytes::Bytes;

use super::{TranscriptionDecoder, whole_as_events};
use crate::event::EventBody;
use crate::providers::ProviderEvent;
use crate::providers::fixtures::check_fixtures;

#[tokio::test]
async fn every_fixture_gives_its_exact_event_sequence_under_every_split() {
    check_fixtures("openai_transcription", TranscriptionDecoder::default).await;
}

#[test]
fn a_model_that_cannot_stream_gives_one_done_event() {
    let body =
        Bytes::from_static(br#"{"text":"Hello there.","usage":{"type":"duration","seconds":2}}"#);
    let events = whole_as_events(&body).unwrap();
    assert_eq!(
        events.len(),
        2,
        "no token usage to report, then done and the end"
    );
    let ProviderEvent::Event(EventBody::TranscriptDone(done)) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(done.text, "Hello there.");
    assert_eq!(done.extra["usage"]["seconds"], 2);
    assert!(matches!(events[1], ProviderEvent::Done { .. }));
    assert!(whole_as_events(&Bytes::from_static(b"{\"no\":1}")).is_err());
}
