//! A subscriber's cursor: replay from a position, then follow the live head, then stop after
//! the terminal event. Built only on [`EventLog::read`] and [`EventLog::wait`], so every store
//! gets the same gap-free, duplicate-free hand-off from replay to live.

use std::sync::Arc;

use futures::Stream;

use super::{EventLog, StoreError};
use crate::event::{Epoch, Event, StreamId};

/// Events read per store call; bounds the memory one reader holds at a time.
const PAGE: usize = 256;

/// What a cursor yields.
#[derive(Debug, Clone)]
pub enum LogItem {
    Event(Arc<Event>),
    /// A sliding window dropped events before this reader got to them; it continues at
    /// `first_seq`.
    Skipped {
        first_seq: u64,
    },
}

/// Reads `id`'s log after seq `after` of `epoch`, in order, until the terminal event (included).
///
/// Ends after an error (`Replaced` if the log was recreated under another epoch); the stream
/// simply ends if the log finished with nothing after `after`.
pub fn read_from(
    log: Arc<dyn EventLog>,
    id: StreamId,
    epoch: Epoch,
    mut after: u64,
) -> impl Stream<Item = Result<LogItem, StoreError>> + Send + 'static {
    async_stream::stream! {
        loop {
            let page = match log.read(&id, after, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    yield Err(e);
                    return;
                }
            };
            if page.epoch != epoch {
                yield Err(StoreError::Replaced);
                return;
            }
            if page.first_seq > after + 1 {
                after = page.first_seq - 1;
                yield Ok(LogItem::Skipped { first_seq: page.first_seq });
            }
            // A short page reached the head: waiting (which re-checks the head first) saves
            // a read that would come back empty.
            let caught_up = page.events.len() < PAGE;
            for event in page.events {
                after = event.seq;
                let terminal = event.body.terminal_status().is_some();
                yield Ok(LogItem::Event(event));
                if terminal {
                    return;
                }
            }
            if caught_up {
                match log.wait(&id, after).await {
                    Ok(true) => continue,
                    Ok(false) => return,
                    Err(e) => {
                        yield Err(e);
                        return;
                    }
                }
            }
        }
    }
}
