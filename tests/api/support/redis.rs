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

/// A private `redis-server` on a free port, for tests that flush or restart Redis without
/// disturbing the others. Killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again, on the same port, empty: no persistence).
    pub async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed where Redis tests run");
        self.child = Some(child);
        let client = ::redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: Result<String, _> = ::redis::cmd("PING").query_async(&mut conn).await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// SIGSTOP / SIGCONT: a Redis that keeps connections open but answers nothing.
    pub fn freeze(&self, frozen: bool) {
        let pid = self
            .child
            .as_ref()
            .and_then(tokio::process::Child::id)
            .unwrap();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn flush_all(&self) {
        let client = ::redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = ::redis::cmd("FLUSHALL")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
