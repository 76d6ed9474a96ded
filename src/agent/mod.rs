//! Agent streams: an agent publishes its progress (native or AG-UI events) into a durable,
//! resumable stream that any number of dashboards tail. `input` checks a publish body,
//! `agui` maps AG-UI events to native ones, `publish` appends a batch against the stream's
//! state, `idle` ends streams whose publisher went quiet.

mod agui;
mod input;
mod publish;

pub use agui::is_agui_type;

pub use input::{Batch, BatchError, FieldError, parse_batch};
pub use publish::{PublishError, Published, Publisher};

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::event::{EventBody, Started, StateSnapshot, StreamId};
use crate::relay::IdleWatch;
use crate::store::{Created, EventLog, NewStream, Retention, StoreError, StreamMeta};

/// How agent streams behave (`[agents]` in the config).
#[derive(Clone, Debug)]
pub struct AgentSettings {
    /// A stream with no new event for this long ends `agent_idle_timeout`.
    pub idle_timeout: Duration,
    /// The sliding window of events kept for resume; the state is kept whole regardless.
    pub window_events: usize,
    pub window_age: Duration,
    /// Events accepted in one publish call.
    pub max_batch: usize,
}

/// Creates agent streams and appends what their publishers send. Cheap to share.
pub struct Agents {
    log: Arc<dyn EventLog>,
    publisher: Publisher,
    idle: Arc<IdleWatch>,
    pub settings: AgentSettings,
}

impl Agents {
    pub fn new(log: Arc<dyn EventLog>, settings: AgentSettings, idle: Arc<IdleWatch>) -> Self {
        Self {
            publisher: Publisher::new(Arc::clone(&log)),
            log,
            idle,
            settings,
        }
    }

    /// Starts watching `id`'s idle timeout here unless this instance already does. Called on
    /// create, publish and subscribe, so a stream whose creating instance restarted is
    /// watched again as soon as anyone uses it.
    pub fn watch(&self, id: &StreamId) {
        self.idle
            .watch(id, self.settings.idle_timeout, "agent_idle_timeout");
    }

    /// Creates the stream (or finds the one `key` names), appends `stream.started` and the
    /// initial state if given, and starts its idle watch.
    pub async fn create(
        &self,
        id: StreamId,
        meta: StreamMeta,
        key: Option<String>,
        state: Option<Value>,
    ) -> Result<Created, StoreError> {
        let started = EventBody::Started(Started {
            stream_id: id.to_string(),
            kind: meta.kind,
            model: meta.model.clone(),
            provider: meta.provider.clone(),
            created_at: meta.created_at,
        });
        let created = self
            .log
            .create(NewStream {
                id: id.clone(),
                meta,
                retention: Retention::Window {
                    max_events: self.settings.window_events,
                    max_age: self.settings.window_age,
                },
                idempotency_key: key,
                leased: false,
            })
            .await?;
        if matches!(created, Created::Existing(_)) {
            return Ok(created);
        }
        let mut first = vec![started];
        if let Some(state) = state {
            first.push(EventBody::StateSnapshot(StateSnapshot {
                state,
                ..StateSnapshot::default()
            }));
        }
        if let Err(e) = self.log.append_at(&id, first, 0).await {
            // Nobody holds the tokens of a stream whose creation failed: end it now rather
            // than leave it running with no one to finish it.
            let failed = EventBody::failed("internal_error", "the stream could not start", true);
            let _ = self.log.finish(&id, failed).await;
            return Err(e);
        }
        self.watch(&id);
        tracing::info!(stream_id = %id, "agent stream created");
        Ok(created)
    }

    pub async fn publish(&self, id: &StreamId, batch: Batch) -> Result<Published, PublishError> {
        let published = self.publisher.publish(id, batch).await?;
        if !published.status.is_finished() {
            self.watch(id);
        }
        Ok(published)
    }
}

#[cfg(test)]
mod tests;
