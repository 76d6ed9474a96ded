//! Appending a checked batch to an agent stream: state operations are tried on the stream's
//! current state first (a patch that does not apply changes nothing), then the batch is
//! appended in one piece, only if the log is still where the check read it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::input::Batch;
use crate::event::{Aggregate, Epoch, EventBody, EventId, StreamId, StreamKind, StreamStatus};
use crate::store::{EventLog, StoreError};

/// Publishes on this instance to one stream are taken one at a time (by a lock stripe), so
/// the compare-and-append only ever races publishers on other instances.
const STRIPES: usize = 64;
/// Tries before a publisher losing every race to other instances is told to retry.
const ATTEMPTS: u32 = 32;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("stream is not an agent stream")]
    NotAgent,
    #[error("stream already finished")]
    Finished,
    #[error("event {index}: the state patch does not apply: {message}")]
    StatePatch { index: usize, message: String },
    #[error("too many concurrent publishers")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ids the batch got, first to last.
#[derive(Debug)]
pub struct Published {
    pub epoch: Epoch,
    pub first: u64,
    pub last: u64,
    pub status: StreamStatus,
}

impl Published {
    pub fn ids(&self) -> Vec<String> {
        (self.first..=self.last)
            .map(|seq| EventId::new(&self.epoch, seq).to_string())
            .collect()
    }
}

pub struct Publisher {
    log: Arc<dyn EventLog>,
    stripes: Vec<Mutex<()>>,
}

impl Publisher {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, id: &StreamId) -> &Mutex<()> {
        let hash = id
            .as_str()
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.stripes[hash % STRIPES]
    }

    pub async fn publish(&self, id: &StreamId, batch: Batch) -> Result<Published, PublishError> {
        let _turn = self.stripe(id).lock().await;
        let stateful = batch
            .events
            .iter()
            .any(|e| matches!(e, EventBody::StateDelta(_)));
        let count = batch.events.len() as u64;
        for attempt in 0..ATTEMPTS {
            // Only a patch needs the state; everything else needs just the head.
            let (head, state) = if stateful {
                let info = self.log.info(id).await?;
                (info.head, Some(info.aggregate.state))
            } else {
                (self.log.head(id).await?, None)
            };
            if head.meta.kind != StreamKind::Agent {
                return Err(PublishError::NotAgent);
            }
            if head.status.is_finished() {
                return Err(PublishError::Finished);
            }
            if let Some(mut state) = state {
                for (index, body) in batch.events.iter().enumerate() {
                    Aggregate::apply_state(&mut state, body).map_err(|e| {
                        PublishError::StatePatch {
                            index,
                            message: e.0,
                        }
                    })?;
                }
            }
            match self
                .log
                .append_at(id, batch.events.clone(), head.last_seq)
                .await
            {
                Ok(last) => {
                    let finished = batch.events.last().and_then(EventBody::terminal_status);
                    return Ok(Published {
                        epoch: head.epoch,
                        first: last + 1 - count,
                        last,
                        status: finished.unwrap_or(StreamStatus::Running),
                    });
                }
                Err(StoreError::Conflict) => {
                    // Another instance appended first. Racing it again at once would repeat
                    // the same race in the same phase; a random pause breaks the tie.
                    let cap = 1u64 << attempt.min(6);
                    let pause = rand::random_range(0..=cap);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(StoreError::Finished) => return Err(PublishError::Finished),
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublishError::Contended)
    }
}
