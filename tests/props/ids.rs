//! Resume ids (SPEC §5): `EventId` and `StreamId` parsing never panics, accepts exactly the
//! documented shape (checked against a separate reading of it), round-trips what tokenrelay
//! issues, and rejects a valid id with anything around it. `Last-Event-ID` goes through
//! `sse::plan`, which trims whitespace and treats anything unreadable as `malformed_id`.

use std::sync::Arc;

use proptest::prelude::*;
use tokenrelay::event::{Epoch, EventId, Format, StreamId, StreamKind, StreamStatus};
use tokenrelay::sse::{ResetReason, ResumePlan, plan};
use tokenrelay::store::LogHead;

use crate::renderers::meta;
use crate::strategies::text;

const CROCKFORD: &str = "0123456789abcdefghjkmnpqrstvwxyz";

/// `<epoch>.<seq>` as documented: Crockford base32 epoch (either case), at most 20
/// decimal digits holding a `u64`, 64 bytes in all. Returns the canonical form (lowercase epoch, seq as a number).
fn documented_event_id(s: &str) -> Option<(String, u64)> {
    let (epoch, seq) = s.split_once('.')?;
    let epoch_ok = !epoch.is_empty()
        && epoch
            .chars()
            .all(|c| CROCKFORD.contains(c.to_ascii_lowercase()));
    let seq_ok = (1..=20).contains(&seq.len()) && seq.chars().all(|c| c.is_ascii_digit());
    if s.len() > 64 || !epoch_ok || !seq_ok {
        return None;
    }
    Some((epoch.to_ascii_lowercase(), seq.parse().ok()?))
}

fn epoch() -> impl Strategy<Value = String> {
    "[0-9a-hjkmnp-tv-z]{1,44}"
}

/// Text that looks like ids: the right alphabets and a dot, plus near misses.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z.]{0,30}",
        "[0-9a-hjkmnp-tv-zA-Z]{1,12}\\.[0-9]{0,21}",
        "[0-9a-z]{1,3}\\.(0{0,3}1[0-9]{19}|[0-9]{18,21})",
        "st_[0-9a-zA-Z]{24,28}",
        "st_[0-9a-hjkmnp-tv-zA-HJKMNP-TV-Z]{25,27}",
        text(),
    ]
}

/// Anything that cannot extend an id: not a letter, digit or dot, and not whitespace either
/// (`plan` trims whitespace on purpose).
fn garbage() -> impl Strategy<Value = String> {
    "[^0-9a-zA-Z.\\s]{1,4}"
}

fn head(epoch: &str, first_seq: u64, last_seq: u64, status: StreamStatus) -> LogHead {
    LogHead {
        epoch: Epoch::from_stored(epoch.to_owned()),
        first_seq,
        last_seq,
        status,
        meta: Arc::new(meta(StreamKind::Chat, Format::Native)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn event_ids_parse_exactly_the_documented_shape(s in id_like()) {
        let parsed = s.parse::<EventId>().ok().map(|id| (id.epoch.to_string(), id.seq));
        prop_assert_eq!(parsed, documented_event_id(&s));
    }

    #[test]
    fn issued_event_ids_round_trip(epoch in epoch(), seq in any::<u64>()) {
        let id = EventId::new(&Epoch::from_stored(epoch), seq);
        let text = id.to_string();
        let back = text.parse::<EventId>();
        if text.len() <= 64 {
            prop_assert_eq!(back, Ok(id));
        } else {
            prop_assert!(back.is_err(), "over the documented 64 bytes");
        }
    }

    #[test]
    fn garbage_around_an_event_id_is_rejected(
        epoch in "[0-9a-hjkmnp-tv-z]{1,10}",
        seq in any::<u32>(),
        garbage in garbage(),
        place in 0..3,
    ) {
        let (before, after) = match place {
            0 => (garbage.as_str(), ""),
            1 => ("", garbage.as_str()),
            _ => (garbage.as_str(), garbage.as_str()),
        };
        let s = format!("{before}{epoch}.{seq}{after}");
        prop_assert!(s.parse::<EventId>().is_err(), "{:?} parsed", s);
        let h = head(&epoch, 1, u64::from(u32::MAX), StreamStatus::Running);
        let malformed = matches!(
            plan(&h, Some(&s)),
            ResumePlan::Reset { reset, .. } if reset.reason == ResetReason::MalformedId
        );
        prop_assert!(malformed, "{:?} is not a malformed_id reset", s);
    }

    #[test]
    fn last_event_id_resumes_after_a_valid_id_even_with_whitespace_around_it(
        epoch in "[0-9a-hjkmnp-tv-z]{1,10}",
        last_seq in 1u64..1000,
        pick in any::<prop::sample::Index>(),
        pad in "[ \t]{0,3}",
    ) {
        let seq = pick.index(last_seq as usize + 1) as u64;
        let h = head(&epoch, 1, last_seq, StreamStatus::Running);
        let position = format!("{pad}{epoch}.{seq}{pad}");
        prop_assert_eq!(plan(&h, Some(&position)), ResumePlan::From(seq));
    }

    #[test]
    fn any_last_event_id_gives_a_plan_and_a_reset_starts_at_the_window(
        s in id_like(),
        first_seq in 1u64..50,
        len in 0u64..50,
        finished in any::<bool>(),
    ) {
        let status = if finished { StreamStatus::Completed } else { StreamStatus::Running };
        let h = head("abc", first_seq, first_seq + len, status);
        match plan(&h, Some(&s)) {
            ResumePlan::Reset { after, .. } => prop_assert_eq!(after, first_seq - 1),
            ResumePlan::From(after) => prop_assert!(after + 1 >= first_seq && after < first_seq + len + 1),
            ResumePlan::Finished => prop_assert!(finished),
        }
    }

    #[test]
    fn stream_ids_parse_exactly_the_documented_shape(s in id_like()) {
        let documented = s.strip_prefix("st_").is_some_and(|body| {
            body.len() == 26
                && body.starts_with(|c: char| ('0'..='7').contains(&c))
                && body.chars().all(|c| CROCKFORD.contains(c.to_ascii_lowercase()))
        });
        let parsed = s.parse::<StreamId>();
        prop_assert_eq!(parsed.is_ok(), documented, "{:?}", s);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), s.to_ascii_lowercase());
            prop_assert_eq!(id.to_string().parse::<StreamId>().ok(), Some(id));
        }
    }

    #[test]
    fn issued_stream_ids_round_trip_and_reject_garbage_around_them(
        before in prop::option::of(garbage()),
        after in prop::option::of(garbage()),
    ) {
        let id = StreamId::random();
        prop_assert_eq!(id.to_string().parse::<StreamId>().ok(), Some(id.clone()));
        if before.is_some() || after.is_some() {
            let s = format!("{}{id}{}", before.unwrap_or_default(), after.unwrap_or_default());
            prop_assert!(s.parse::<StreamId>().is_err(), "{:?} parsed", s);
        }
    }
}
