//! The embedded broker of `tutti up`: one `nats-server` child process with JetStream, its
//! config and store in the data directory, listening on loopback only.
//!
//! Readiness is observed (the monitoring endpoint's `/healthz` answers 200 once JetStream is
//! up), never slept for. Stopping sends SIGTERM, so JetStream flushes, then SIGKILL after a
//! grace period.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tutti_bus::nats_server::healthz_ok;
use tutti_server::tls::TlsFiles;

/// How long the broker may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running embedded broker.
#[derive(Debug)]
pub(crate) struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
    tls: bool,
}

impl Broker {
    /// Starts `nats-server` from `binary` with its files under `dir`, on 127.0.0.1:`port`.
    pub(crate) fn start(
        binary: &Path,
        dir: &Path,
        port: u16,
        max_file_store: u64,
        tls: Option<&TlsFiles>,
        auth_config: &str,
    ) -> anyhow::Result<Broker> {
        ensure_port_free(port, "--nats-port")?;
        let monitor_port = free_port()?;
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            config_text(dir, port, monitor_port, max_file_store, tls) + auth_config,
        )
        .with_context(|| format!("write {}", config.display()))?;
        let log = std::fs::File::create(dir.join("nats.log")).context("create the broker log")?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let mut broker = Broker {
            child,
            port,
            dir: dir.to_path_buf(),
            tls: tls.is_some(),
        };
        broker.wait_ready(monitor_port)?;
        Ok(broker)
    }

    /// The client URL (`tls://` when the broker only speaks TLS).
    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Stops the broker: SIGTERM, then SIGKILL after 10 s.
    pub(crate) fn stop(mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&mut self, monitor_port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !healthz_ok(monitor_port) {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "nats-server exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "nats-server was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

/// Fails with an error that names the port and the flag to change it when something else
/// already listens there.
pub(crate) fn ensure_port_free(port: u16, flag: &str) -> anyhow::Result<()> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(err) => bail!(
            "port {port} is not available ({err}); is another `tutti up` running? Choose another port with {flag}"
        ),
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("find a free port for broker monitoring")?;
    Ok(listener.local_addr()?.port())
}

fn config_text(
    dir: &Path,
    port: u16,
    monitor_port: u16,
    max_file_store: u64,
    tls: Option<&TlsFiles>,
) -> String {
    let tls = match tls {
        Some(files) => format!(
            "tls {{\n  cert_file: {cert:?}\n  key_file: {key:?}\n  timeout: 5\n}}\n",
            cert = files.cert_file.display().to_string(),
            key = files.key_file.display().to_string(),
        ),
        None => String::new(),
    };
    format!(
        "# Written by `tutti up`; rewritten at every start.\nserver_name: tutti-up\nhost: 127.0.0.1\nport: {port}\nhttp: \"127.0.0.1:{monitor_port}\"\n\
         jetstream {{\n  store_dir: {store:?}\n  max_file_store: {max_file_store}\n  max_memory_store: 268435456\n}}\n{tls}",
        store = dir.join("jetstream").display().to_string(),
    )
}
