//! Redis for the tests: the URL from `TOKENRELAY_TEST_REDIS_URL`, and a fresh key prefix per
//! store so tests never see each other's streams.

use std::sync::Arc;
use std::time::Duration;

use tokenrelay::store::{EventLog, RedisConfig, RedisStore, StoreLimits};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn url() -> String {
    std::env::var("TOKENRELAY_TEST_REDIS_URL")
        .expect("TOKENRELAY_TEST_REDIS_URL is set where Redis tests run")
}

pub fn fresh_prefix() -> String {
    format!("trtest:{:012x}", rand::random::<u64>() >> 16)
}

/// A Redis store with its background tasks running, on a fresh prefix.
pub async fn store(limits: StoreLimits) -> Arc<dyn EventLog> {
    let config = RedisConfig {
        url: url(),
        prefix: fresh_prefix(),
        lease: Duration::from_secs(15),
    };
    let store = RedisStore::new(config, limits).unwrap();
    store.start(&TaskTracker::new(), CancellationToken::new());
    Arc::new(store)
}
