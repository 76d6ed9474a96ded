//! The Anthropic adapter on every fixture: whole, in 1-byte reads and at random splits,
//! asserting the exact native event sequence.

use super::AnthropicDecoder;
use crate::providers::fixtures::check_fixtures;

#[tokio::test]
async fn every_fixture_gives_its_exact_event_sequence_under_every_split() {
    check_fixtures("anthropic", AnthropicDecoder::default).await;
}
