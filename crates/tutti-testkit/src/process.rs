//! One `nats-server` child process: config file, start, readiness, stop.
//!
//! [`crate::TestNats`] and [`crate::TestNatsCluster`] are thin scenarios over this. Readiness is
//! observed, never slept for: the broker writes a ports file once it listens, and its
//! monitoring endpoint's `/healthz` answers 200 only once JetStream is up (and, in a cluster,
//! has a meta leader).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tutti_bus::nats_server::{NatsServerSearch, healthz_ok, locate_or_provision};

/// How long a broker may take to become ready before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The ports a running broker listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    pub(crate) client: u16,
    pub(crate) monitor: u16,
}

/// A `nats-server` process with its own directory (config, store, logs, ports file).
#[derive(Debug)]
pub(crate) struct NatsProcess {
    dir: PathBuf,
    child: Option<Child>,
    pub(crate) ports: Option<Ports>,
}

impl NatsProcess {
    /// Writes `config` into `dir` and starts the broker, waiting until it is ready.
    pub(crate) fn start(dir: &Path, config: &str) -> NatsProcess {
        fs::create_dir_all(dir).expect("create broker dir");
        fs::write(dir.join("nats.conf"), config).expect("write broker config");
        let mut process = NatsProcess {
            dir: dir.to_path_buf(),
            child: None,
            ports: None,
        };
        process.spawn();
        process
    }

    /// Starts the broker again from the config file already in its directory.
    pub(crate) fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let ports_dir = self.dir.join("ports");
        let _ = fs::remove_dir_all(&ports_dir);
        fs::create_dir_all(&ports_dir).expect("create ports dir");
        let log = fs::File::create(self.dir.join("nats.log")).expect("create broker log");
        let child = Command::new(binary())
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let ports = self.wait_for_ports(&ports_dir);
        self.ports = Some(ports);
        self.wait_healthy(ports.monitor);
    }

    /// Rewrites the config file (used to pin the ports chosen at first start).
    pub(crate) fn rewrite_config(&self, config: &str) {
        fs::write(self.dir.join("nats.conf"), config).expect("rewrite broker config");
    }

    /// Stops the broker gracefully (SIGTERM, then SIGKILL after 10 s).
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
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The broker's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }

    fn wait_for_ports(&mut self, ports_dir: &Path) -> Ports {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(ports) = read_ports_file(ports_dir) {
                return ports;
            }
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "nats-server wrote no ports file:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_healthy(&mut self, monitor_port: u16) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !healthz_ok(monitor_port) {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "nats-server never became healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker process");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("nats-server exited early ({status}):\n{}", self.log());
        }
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `nats-server` binary, located or provisioned once per test process.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let search = NatsServerSearch::from_env();
        locate_or_provision(&search, &mut |line| eprintln!("tutti-testkit: {line}"))
            .unwrap_or_else(|err| panic!("{err}"))
    })
}

/// Reserves a free TCP port on loopback by binding port 0 and releasing it. Only used where
/// a port must be known before the process starts (cluster routes); a small race is accepted.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

fn read_ports_file(ports_dir: &Path) -> Option<Ports> {
    let entry = fs::read_dir(ports_dir).ok()?.flatten().next()?;
    let text = fs::read_to_string(entry.path()).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let port_of = |key: &str| -> Option<u16> {
        let url = json.get(key)?.get(0)?.as_str()?;
        url.rsplit(':').next()?.parse().ok()
    };
    Some(Ports {
        client: port_of("nats")?,
        monitor: port_of("monitoring")?,
    })
}
