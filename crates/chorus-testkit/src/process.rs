//! Run a Chorus binary as a child process for end-to-end tests.

use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::oneshot,
};

/// A running server process.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// The tasks copying stdout and stderr into `logs`; they end at EOF.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Start `exe serve --listen 127.0.0.1:0 --log-json` with `env`, and wait
    /// (up to 30 s) for its "listening" log line to learn the port.
    pub async fn start(exe: &Path, data_dir: &Path, env: &[(&str, String)]) -> Process {
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-json"])
            .env_clear()
            .env("CHORUS_DATA_DIR", data_dir)
            .env("CHORUS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the server binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = oneshot::channel::<String>();
        let mut tx = Some(tx);
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = logs.clone();
        // Drained for the process's whole life so it never blocks on a full pipe.
        let stderr_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"].as_str().is_some_and(|m| m.ends_with(" listening"))
                    && let (Some(tx), Some(addr)) = (tx.take(), v["fields"]["listen"].as_str())
                {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let sink = logs.clone();
        let stdout_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("server did not start; output:\n{}", logs.lock().unwrap().join("\n")),
        };
        Process { child, base: format!("http://{addr}"), logs, readers: vec![stderr_reader, stdout_reader] }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// `kill -9`: no chance to flush or clean up.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the server");
    }

    /// SIGTERM, then wait for the exit status (up to `timeout`).
    pub async fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("server did not stop in time")
            .expect("wait");
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(timeout, reader).await;
        }
        status
    }

    /// Wait for the process to exit on its own (up to `timeout`), and for
    /// its last output to be read.
    pub async fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .expect("server did not exit in time")
            .expect("wait");
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(timeout, reader).await;
        }
        status
    }
}
