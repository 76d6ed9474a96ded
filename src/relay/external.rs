//! Streams written from outside rather than by a producer here (agents' publishes, live
//! feeds' audio): no lease, a sliding window, and `stream.started` appended at creation.

use std::time::Duration;

use crate::event::{EventBody, Started, StreamId};
use crate::store::{Created, EventLog, NewStream, Retention, StoreError, StreamMeta};

/// Creates the stream (or finds the one `key` names) and, if new, appends `stream.started`
/// followed by `first`. A stream whose first append failed is ended at once: nobody holds
/// its tokens, so nobody else would ever end it.
pub async fn create_external(
    log: &dyn EventLog,
    id: StreamId,
    meta: StreamMeta,
    key: Option<String>,
    window: (usize, Duration),
    first: Vec<EventBody>,
) -> Result<Created, StoreError> {
    let started = EventBody::Started(Started {
        stream_id: id.to_string(),
        kind: meta.kind,
        model: meta.model.clone(),
        provider: meta.provider.clone(),
        created_at: meta.created_at,
    });
    let created = log
        .create(NewStream {
            id: id.clone(),
            meta,
            retention: Retention::Window {
                max_events: window.0,
                max_age: window.1,
            },
            idempotency_key: key,
            leased: false,
        })
        .await?;
    if matches!(created, Created::New { .. }) {
        let events = std::iter::once(started).chain(first).collect();
        if let Err(e) = log.append_at(&id, events, 0).await {
            let failed = EventBody::failed("internal_error", "the stream could not start", true);
            let _ = log.finish(&id, failed).await;
            return Err(e);
        }
    }
    Ok(created)
}
