//! Resume rules (SPEC §5): where a subscriber starts, given the log's head and the position it
//! sent. Pure, so every rule is unit-tested without a server.

use serde::Serialize;

use crate::event::{EventId, StreamStatus};
use crate::store::LogHead;

/// Where to start reading.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumePlan {
    /// Replay the events after this seq, then follow the live head.
    From(u64),
    /// The position cannot be used: tell the client (`reset`, or 410), then replay what is
    /// retained from its start.
    Reset { reset: Reset, after: u64 },
    /// The client already holds the terminal event: nothing more will ever come (204).
    Finished,
}

/// The body of a `reset` event, and of the 410 answer where a format cannot carry one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reset {
    pub reason: ResetReason,
    /// The oldest retained event id, and the newest.
    pub first: String,
    pub last: String,
    pub status: StreamStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    MalformedId,
    /// The id belongs to another incarnation of the log (it was lost and recreated).
    EpochMismatch,
    /// The position fell out of the retained window.
    BeforeWindow,
    /// The position is ahead of anything appended.
    AfterHead,
}

impl ResetReason {
    pub fn describe(self) -> &'static str {
        match self {
            Self::MalformedId => "the last event id is not one tokenrelay issued",
            Self::EpochMismatch => "the last event id belongs to a log that no longer exists",
            Self::BeforeWindow => "the events after the last event id are no longer retained",
            Self::AfterHead => "the last event id is ahead of the stream",
        }
    }
}

/// Decides where a subscriber starts. `position` is the raw `Last-Event-ID` (or query) value.
pub fn plan(head: &LogHead, position: Option<&str>) -> ResumePlan {
    let start = head.first_seq.saturating_sub(1);
    let reset = |reason| ResumePlan::Reset {
        reset: Reset {
            reason,
            first: EventId::new(&head.epoch, head.first_seq).to_string(),
            last: EventId::new(&head.epoch, head.last_seq).to_string(),
            status: head.status,
        },
        after: start,
    };
    let Some(position) = position else {
        // "From the start" when the start is gone (a sliding window moved on) is a partial
        // replay: say so rather than pass it off as the whole stream.
        return if start > 0 {
            reset(ResetReason::BeforeWindow)
        } else {
            ResumePlan::From(start)
        };
    };
    let id = match position.trim().parse::<EventId>() {
        Ok(id) => id,
        Err(_) => return reset(ResetReason::MalformedId),
    };
    if id.epoch != head.epoch {
        reset(ResetReason::EpochMismatch)
    } else if id.seq > head.last_seq {
        reset(ResetReason::AfterHead)
    } else if id.seq < start {
        reset(ResetReason::BeforeWindow)
    } else if id.seq == head.last_seq && head.status.is_finished() {
        ResumePlan::Finished
    } else {
        ResumePlan::From(id.seq)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Epoch, Format, StreamKind};
    use crate::store::StreamMeta;

    fn head(first_seq: u64, last_seq: u64, status: StreamStatus) -> LogHead {
        LogHead {
            epoch: Epoch::random(),
            first_seq,
            last_seq,
            status,
            meta: Arc::new(StreamMeta {
                kind: StreamKind::Chat,
                model: "mock/default".into(),
                provider: "mock".into(),
                owner: "anonymous".into(),
                created_at: 0,
                format: Format::Native,
                include_usage: false,
                read_token_hash: String::new(),
                write_token_hash: String::new(),
                request_hash: String::new(),
                feed: None,
                choices: 1,
            }),
        }
    }

    fn reason(plan: ResumePlan) -> Option<ResetReason> {
        match plan {
            ResumePlan::Reset { reset, .. } => Some(reset.reason),
            _ => None,
        }
    }

    #[test]
    fn no_position_reads_from_the_start_or_says_the_start_is_gone() {
        assert_eq!(
            plan(&head(1, 9, StreamStatus::Running), None),
            ResumePlan::From(0)
        );
        let ResumePlan::Reset { reset, after } = plan(&head(5, 9, StreamStatus::Running), None)
        else {
            panic!("a window that moved on is a reset")
        };
        assert_eq!((reset.reason, after), (ResetReason::BeforeWindow, 4));
    }

    #[test]
    fn a_position_inside_the_log_resumes_after_it() {
        let h = head(1, 9, StreamStatus::Running);
        for seq in 0..=9 {
            assert_eq!(
                plan(&h, Some(&format!("{}.{seq}", h.epoch))),
                ResumePlan::From(seq)
            );
        }
    }

    #[test]
    fn holding_the_terminal_event_means_nothing_is_left() {
        let h = head(1, 9, StreamStatus::Completed);
        assert_eq!(
            plan(&h, Some(&format!("{}.9", h.epoch))),
            ResumePlan::Finished
        );
        assert_eq!(
            plan(&h, Some(&format!("{}.8", h.epoch))),
            ResumePlan::From(8)
        );
    }

    #[test]
    fn unusable_positions_reset_to_the_start_of_the_window() {
        let h = head(5, 9, StreamStatus::Running);
        let e = &h.epoch;
        assert_eq!(
            reason(plan(&h, Some("garbage"))),
            Some(ResetReason::MalformedId)
        );
        assert_eq!(
            reason(plan(&h, Some("zzzzzzzzzz.3"))),
            Some(ResetReason::EpochMismatch)
        );
        assert_eq!(
            reason(plan(&h, Some(&format!("{e}.10")))),
            Some(ResetReason::AfterHead)
        );
        assert_eq!(
            reason(plan(&h, Some(&format!("{e}.3")))),
            Some(ResetReason::BeforeWindow)
        );
        assert_eq!(plan(&h, Some(&format!("{e}.4"))), ResumePlan::From(4));
        match plan(&h, Some("garbage")) {
            ResumePlan::Reset { reset, after } => {
                assert_eq!(after, 4);
                assert_eq!(reset.first, format!("{e}.5"));
                assert_eq!(reset.last, format!("{e}.9"));
            }
            other => panic!("{other:?}"),
        }
    }
}
