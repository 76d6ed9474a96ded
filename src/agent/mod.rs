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

use crate::auth::StreamPermit;
use crate::event::{EventBody, StateSnapshot, StreamId};
use crate::relay::{IdleWatch, create_external};
use crate::store::{Created, EventLog, StoreError, StreamMeta};

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
            .watch(id, self.settings.idle_timeout, "agent_idle_timeout", None);
    }

    /// Creates the stream (or finds the one `key` names), appends `stream.started` and the
    /// initial state if given, and starts its idle watch.
    pub async fn create(
        &self,
        id: StreamId,
        meta: StreamMeta,
        key: Option<String>,
        state: Option<Value>,
        permit: Option<StreamPermit>,
    ) -> Result<Created, StoreError> {
        let initial = state.map(|state| {
            EventBody::StateSnapshot(StateSnapshot {
                state,
                ..StateSnapshot::default()
            })
        });
        let window = (self.settings.window_events, self.settings.window_age);
        let first = initial.into_iter().collect();
        let created = create_external(&*self.log, id.clone(), meta, key, window, first).await?;
        if matches!(created, Created::New { .. }) {
            self.idle.watch(
                &id,
                self.settings.idle_timeout,
                "agent_idle_timeout",
                permit,
            );
            tracing::info!(stream_id = %id, "agent stream created");
        }
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
