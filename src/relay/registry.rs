//! What this instance knows about its streams that the log does not hold: how to stop a
//! producer running here, and how many subscribers are attached here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::event::StreamId;

/// Per-instance table of producers and subscriber counts. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<HashMap<StreamId, Local>>>,
}

struct Local {
    /// Present while this instance runs the stream's producer.
    cancel: Option<CancellationToken>,
    subscribers: watch::Sender<usize>,
}

impl Local {
    fn new() -> Self {
        Self {
            cancel: None,
            subscribers: watch::Sender::new(0),
        }
    }

    fn unused(&self) -> bool {
        self.cancel.is_none() && *self.subscribers.borrow() == 0
    }
}

/// Held by a running producer; unregisters it when dropped.
pub struct ProducerSlot {
    registry: Registry,
    id: StreamId,
    pub cancel: CancellationToken,
    pub subscribers: watch::Receiver<usize>,
}

/// Held for as long as a subscriber is attached; dropping it detaches.
pub struct SubscriberGuard {
    registry: Registry,
    id: StreamId,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that this instance runs `id`'s producer.
    pub fn producer(&self, id: &StreamId) -> ProducerSlot {
        let mut map = lock(&self.inner);
        let local = map.entry(id.clone()).or_insert_with(Local::new);
        let cancel = CancellationToken::new();
        local.cancel = Some(cancel.clone());
        ProducerSlot {
            registry: self.clone(),
            id: id.clone(),
            cancel,
            subscribers: local.subscribers.subscribe(),
        }
    }

    pub fn attach(&self, id: &StreamId) -> SubscriberGuard {
        let mut map = lock(&self.inner);
        let local = map.entry(id.clone()).or_insert_with(Local::new);
        local.subscribers.send_modify(|n| *n += 1);
        SubscriberGuard {
            registry: self.clone(),
            id: id.clone(),
        }
    }

    /// Attaches a subscriber unless `id` already has `max` here; checked and counted under
    /// one lock, so concurrent subscribers cannot overshoot.
    pub fn try_attach(&self, id: &StreamId, max: usize) -> Option<SubscriberGuard> {
        let mut map = lock(&self.inner);
        let local = map.entry(id.clone()).or_insert_with(Local::new);
        if *local.subscribers.borrow() >= max {
            return None;
        }
        local.subscribers.send_modify(|n| *n += 1);
        Some(SubscriberGuard {
            registry: self.clone(),
            id: id.clone(),
        })
    }

    /// Stops the producer if it runs here. Returns whether one was found.
    pub fn cancel(&self, id: &StreamId) -> bool {
        let map = lock(&self.inner);
        match map.get(id).and_then(|l| l.cancel.as_ref()) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Subscribers attached to `id` on this instance.
    pub fn subscribers(&self, id: &StreamId) -> usize {
        lock(&self.inner)
            .get(id)
            .map_or(0, |l| *l.subscribers.borrow())
    }

    /// Streams with at least one subscriber attached here.
    pub fn watched(&self) -> Vec<StreamId> {
        lock(&self.inner)
            .iter()
            .filter(|(_, l)| *l.subscribers.borrow() > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn release(&self, id: &StreamId, producer: bool) {
        let mut map = lock(&self.inner);
        let Some(local) = map.get_mut(id) else { return };
        if producer {
            local.cancel = None;
        } else {
            local.subscribers.send_modify(|n| *n = n.saturating_sub(1));
        }
        if local.unused() {
            map.remove(id);
        }
    }
}

impl SubscriberGuard {
    /// Follows the number of subscribers attached to this stream here (this one included).
    pub fn presence(&self) -> watch::Receiver<usize> {
        let mut map = lock(&self.registry.inner);
        let local = map.entry(self.id.clone()).or_insert_with(Local::new);
        local.subscribers.subscribe()
    }
}

impl Drop for ProducerSlot {
    fn drop(&mut self) {
        self.registry.release(&self.id, true);
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.registry.release(&self.id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_subscribers_and_forgets_streams_nobody_uses() {
        let registry = Registry::new();
        let id = StreamId::random();
        let slot = registry.producer(&id);
        let a = registry.attach(&id);
        let b = registry.attach(&id);
        assert_eq!(*slot.subscribers.borrow(), 2);
        drop(a);
        assert_eq!(registry.subscribers(&id), 1);
        assert!(registry.cancel(&id));
        assert!(slot.cancel.is_cancelled());
        drop(slot);
        drop(b);
        assert!(lock(&registry.inner).is_empty());
        assert!(!registry.cancel(&id));
    }
}
