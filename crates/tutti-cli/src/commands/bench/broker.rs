//! The benchmark's broker: the pinned `nats-server` as a child process with JetStream, on
//! loopback ports chosen once, so that a restart (the `reconnect` scenario) comes back
//! where the agents expect it, with the same store.
//!
//! Like `tutti up`'s broker it runs in operator mode (every agent connects as its own user,
//! with the permissions enrollment gave it), so the figures are those of the shipped mode;
//! only `fanout` runs it open (see `rig::BrokerAuthMode`).
//! Unlike `tutti up`'s broker it exposes its monitoring port (`/varz` is how `reconnect`
//! counts connections) and can be stopped and started again. Readiness is observed through
//! `/healthz`, never slept for. The child inherits the raised open-files limit.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tutti_bus::nats_server::healthz_ok;

/// How long the broker may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// JetStream storage the broker may use; the server's catalog asks for less.
const MAX_FILE_STORE: u64 = 8 << 30;

/// A benchmark broker; killed on drop.
#[derive(Debug)]
pub(crate) struct BenchBroker {
    binary: PathBuf,
    dir: PathBuf,
    client_port: u16,
    monitor_port: u16,
    auth_config: String,
    child: Option<Child>,
}

impl BenchBroker {
    /// Starts `binary` with its files under `dir` and `auth_config` (the operator-mode
    /// settings) and waits until JetStream is ready.
    pub(crate) fn start(
        binary: &Path,
        dir: &Path,
        auth_config: String,
    ) -> anyhow::Result<BenchBroker> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut broker = BenchBroker {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            client_port: free_port()?,
            monitor_port: free_port()?,
            auth_config,
            child: None,
        };
        let config = broker.dir.join("nats.conf");
        std::fs::write(&config, broker.config_text())
            .with_context(|| format!("write {}", config.display()))?;
        broker.spawn()?;
        Ok(broker)
    }

    /// The client URL.
    /// The broker's process id while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:<monitor port>`, for `/varz`.
    pub(crate) fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Stops the broker gracefully (SIGTERM, so JetStream flushes; SIGKILL after 10 s).
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the stopped broker again on the same ports and store; returns when ready.
    pub(crate) fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .context("open the broker log")?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !healthz_ok(self.monitor_port) {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => bail!("the broker is not running"),
            };
            if let Some(status) = exited {
                bail!(
                    "nats-server exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "nats-server was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn config_text(&self) -> String {
        format!(
            "# Written by `tutti bench`.\nserver_name: tutti-bench\nhost: 127.0.0.1\nport: {port}\n\
             http: \"127.0.0.1:{monitor}\"\nmax_connections: 100000\n\
             jetstream {{\n  store_dir: {store:?}\n  max_file_store: {MAX_FILE_STORE}\n  max_memory_store: 268435456\n}}\n",
            port = self.client_port,
            monitor = self.monitor_port,
            store = self.dir.join("jetstream").display().to_string(),
        ) + &self.auth_config
    }
}

impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port for the broker")?;
    Ok(listener.local_addr()?.port())
}
