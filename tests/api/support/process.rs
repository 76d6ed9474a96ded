//! The real `tokenrelay` binary as a separate process, for tests with several instances and
//! for `kill -9`.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Instance {
    pub addr: SocketAddr,
    child: Child,
    _config: TempFile,
    /// Every line the process printed on stdout (its logs), for tests that read them.
    output: Arc<Mutex<Vec<String>>>,
}

struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Instance {
    /// Starts the binary with `config` (TOML) and extra environment, and waits for its
    /// "listening on" line.
    pub async fn start(config: &str, env: &[(&str, String)]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tokenrelay-test-{:016x}.toml",
            rand::random::<u64>()
        ));
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenrelay"));
        command
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the instance starts within 20 s")
                .unwrap()
                .expect("the instance printed its address");
            if let Some(rest) = line.strip_prefix("tokenrelay listening on http://") {
                break rest.trim().parse().unwrap();
            }
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        let output = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&output);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            addr,
            child,
            _config: TempFile(path),
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the instance is running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// What the process printed on stdout so far, one line each.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits for the process to exit; `None` if it still runs after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.child.wait())
            .await
            .ok()
            .map(|status| status.unwrap())
    }

    /// SIGKILL: no shutdown, no drain, no goodbye.
    pub async fn kill_9(&mut self) {
        self.child.kill().await.unwrap();
    }
}
