//! tokenrelay under test: in this process on a port-0 listener (the latency scenarios, and
//! the CI smoke), or as a child `tokenrelay serve` whose resident memory is its own (the
//! idle-subscriber scenario). Both stop when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::oneshot;

use super::BenchError;
use crate::app::{AppState, serve};
use crate::config::{Config, Secrets};

/// A config with the per-key and per-stream limits out of the way of a load test.
pub fn bench_config(store: &str, upstream_origin: &str) -> Config {
    let mut config = Config {
        store: store.to_owned(),
        shutdown_drain_secs: 1,
        ..Config::default()
    };
    config.redis.key_prefix = format!("trbench:{:08x}", rand::random::<u32>());
    config.upstream.openai_base_url = format!("{upstream_origin}/v1");
    config.limits.max_stream_events = 1_000_000;
    config.limits.max_streams_per_key = 1_000_000;
    config.limits.requests_per_minute_per_key = 100_000_000;
    config.limits.max_subscribers_per_stream = 1_000_000;
    config
}

/// tokenrelay in this process, sharing its runtime with the load generator.
pub struct InProcess {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
}

impl InProcess {
    pub async fn start(config: Config) -> Result<Self, BenchError> {
        let state = AppState::new(config, Secrets::default())
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
        })
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `tokenrelay serve` as a child process, killed when dropped.
pub struct ChildServer {
    pub addr: SocketAddr,
    child: Child,
    config_file: PathBuf,
}

impl ChildServer {
    /// Starts `exe serve` with `config` and waits for its "listening on" line.
    pub async fn start(exe: &Path, config: &str) -> Result<Self, BenchError> {
        let config_file = std::env::temp_dir().join(format!(
            "tokenrelay-bench-{:016x}.toml",
            rand::random::<u64>()
        ));
        std::fs::write(&config_file, config)?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&config_file)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup("no stdout from the child server".to_owned()))?;
        let (found, address) = oneshot::channel();
        // Reads the address, then keeps draining so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("tokenrelay listening on http://") {
                    if let Some(found) = found.take() {
                        let _ = found.send(rest.trim().to_owned());
                    }
                }
            }
        });
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            config_file,
        };
        let line = tokio::time::timeout(Duration::from_secs(30), address)
            .await
            .map_err(|_| {
                BenchError::Setup("the child server did not start within 30 s".to_owned())
            })?
            .map_err(|_| {
                BenchError::Setup("the child server exited before listening".to_owned())
            })?;
        server.addr = line.parse().map_err(|_| {
            BenchError::Setup(format!("the child server printed a bad address: {line}"))
        })?;
        Ok(server)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The child's resident memory, in KiB.
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        rss_kib(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_file);
    }
}

/// This process's resident memory, in KiB.
pub fn own_rss_kib() -> Result<u64, BenchError> {
    rss_kib("/proc/self/status")
}

/// `VmRSS` of a `/proc/<pid>/status` file.
fn rss_kib(path: &str) -> Result<u64, BenchError> {
    let status = std::fs::read_to_string(path)?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| BenchError::Setup(format!("no VmRSS in {path}")))
}

/// The soft limit on open files, from `/proc/self/limits` (None when unreadable).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_and_file_limit() {
        assert!(own_rss_kib().unwrap() > 0);
        assert!(open_files_limit().unwrap() > 0);
    }
}
