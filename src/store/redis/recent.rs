//! What this instance's producers appended lately. Readers on the same instance (usually the
//! client that started the generation) get those events without a Redis round trip; Redis
//! stays the source of truth and serves everything else.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::event::{Epoch, Event, EventBody};
use crate::store::Page;

/// Events kept per stream: enough for readers keeping up (they are woken on every append);
/// slower ones read Redis. Small, because every running stream of the instance keeps this many.
const KEEP: usize = 128;

pub(super) struct Recent {
    epoch: Epoch,
    events: VecDeque<Arc<Event>>,
}

impl Recent {
    pub fn new(epoch: Epoch) -> Self {
        Self {
            epoch,
            events: VecDeque::new(),
        }
    }

    /// The log was recreated under `epoch`: nothing kept belongs to it.
    pub fn reset(&mut self, epoch: Epoch) {
        self.epoch = epoch;
        self.events.clear();
    }

    pub fn last(&self) -> Option<u64> {
        self.events.back().map(|e| e.seq)
    }

    /// Records a whole batch the log now holds at `last - n + 1 ..= last`.
    pub fn record(&mut self, last: u64, bodies: &[EventBody], data: &[&str], time_ms: u64) {
        let first = last + 1 - bodies.len() as u64;
        // Only a contiguous run is useful; anything else starts over.
        if self.last().is_some_and(|l| l + 1 != first) {
            self.events.clear();
        }
        for (i, (body, data)) in bodies.iter().zip(data).enumerate() {
            let event = Event::from_stored(first + i as u64, time_ms, body.clone(), (*data).into());
            self.events.push_back(Arc::new(event));
        }
        while self.events.len() > KEEP {
            self.events.pop_front();
        }
    }

    /// The events after `after`, if they are all here.
    pub fn page(&self, after: u64, limit: usize) -> Option<Page> {
        let first = self.events.front()?.seq;
        let last = self.last()?;
        if after + 1 < first || after >= last {
            return None;
        }
        let skip = (after + 1 - first) as usize;
        Some(Page {
            epoch: self.epoch.clone(),
            // Only streams with full retention are recorded: their log starts at 1.
            first_seq: 1,
            events: self.events.iter().skip(skip).take(limit).cloned().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reasoning;

    fn bodies(n: usize) -> Vec<EventBody> {
        (0..n)
            .map(|i| {
                EventBody::ReasoningDelta(Reasoning {
                    text: i.to_string(),
                    signature: None,
                    ..Default::default()
                })
            })
            .collect()
    }

    #[test]
    fn serves_only_what_it_holds_after_a_position() {
        let mut recent = Recent::new(Epoch::random());
        let b = bodies(3);
        let data: Vec<String> = b.iter().map(EventBody::data_json).collect();
        let data: Vec<&str> = data.iter().map(String::as_str).collect();
        recent.record(3, &b, &data, 0);
        let page = recent.page(1, 10).unwrap();
        assert_eq!(
            page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(
            recent.page(3, 10).is_none(),
            "nothing after the head here: ask Redis"
        );
        recent.record(6, &b, &data, 0);
        assert_eq!(recent.page(0, 10).unwrap().events.len(), 6);
        recent.record(10, &b, &data, 0);
        assert!(
            recent.page(0, 10).is_none(),
            "a gap started the record over"
        );
        assert_eq!(recent.page(7, 10).unwrap().events[0].seq, 8);
    }
}
