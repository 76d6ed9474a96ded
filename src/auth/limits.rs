//! A key's limits on this instance: requests per minute (governor's GCRA, bursts up to the
//! per-minute figure) and concurrent streams (a counted permit held by the running stream).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::ClientKey;

pub struct RateLimit {
    pub per_minute: u32,
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(requests).unwrap_or(NonZeroU32::MIN));
        Self {
            per_minute: requests,
            limiter: RateLimiter::direct(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request, or says how long until one would be allowed.
    pub fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// One of a key's concurrent streams; the slot frees when the permit drops (the stream's
/// producer or watch ended).
pub struct StreamPermit {
    key: Arc<ClientKey>,
}

impl StreamPermit {
    pub(super) fn take(key: &Arc<ClientKey>) -> Option<Self> {
        key.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < key.max_streams).then_some(n + 1)
            })
            .ok()?;
        Some(Self {
            key: Arc::clone(key),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.key.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_its_rate_is_told_how_long_to_wait() {
        let rate = RateLimit::per_minute(2);
        assert!(rate.check().is_ok());
        assert!(rate.check().is_ok());
        let wait = rate.check().unwrap_err();
        assert!(wait > Duration::from_secs(20) && wait <= Duration::from_secs(30));
    }
}
