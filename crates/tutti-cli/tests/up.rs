//! The `tutti up` smoke test: the real binary starts a broker, the server and an agent on
//! free ports in a temp data dir; `tutti run --all --wait -- echo hello` works through the
//! profile `up` wrote (with an admin API token); SIGINT stops everything; a second `up`
//! still lists the first run, through the same profile and token. `tutti up --tls` does the
//! same over TLS end to end (broker, HTTPS, the CLI trusting the local CA), and the server
//! config `up` wrote passes `tutti server --check`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Up {
    child: Child,
}

impl Up {
    /// Starts `tutti up` and waits for its "tutti is up." line.
    fn start(data_dir: &Path, config_home: &Path, http_port: u16, nats_port: u16) -> Up {
        Up::start_with(data_dir, config_home, http_port, nats_port, &[])
    }

    fn start_with(
        data_dir: &Path,
        config_home: &Path,
        http_port: u16,
        nats_port: u16,
        extra: &[&str],
    ) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["up", "--data-dir"])
            .arg(data_dir)
            .args([
                "--http",
                &format!("127.0.0.1:{http_port}"),
                "--nats-port",
                &nats_port.to_string(),
            ])
            .args(extra)
            .env("XDG_CONFIG_HOME", config_home)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tutti up");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(line) if line.contains("tutti is up.") => break,
                Ok(_) => continue,
                Err(err) => panic!("tutti up never reported ready: {err}"),
            }
        }
        Up { child }
    }

    /// SIGINT, as Ctrl-C; returns the exit status.
    fn interrupt(mut self) -> std::process::ExitStatus {
        signal::kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).expect("SIGINT");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tutti up did not stop after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker's INFO line, the first thing it sends a client.
fn broker_info(port: u16) -> String {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("INFO line");
    line
}

fn tutti(config_home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("TUTTI_SERVER")
        .env_remove("TUTTI_TOKEN")
        .output()
        .expect("run tutti")
}

#[test]
fn up_runs_hello_on_the_local_agent_stops_on_sigint_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config_home = dir.path().join("config");
    let (http_port, nats_port) = (free_port(), free_port());

    let up = Up::start(&data_dir, &config_home, http_port, nats_port);
    // The broker refuses anonymous clients: every agent connects as its own user.
    assert!(
        broker_info(nats_port).contains("\"auth_required\":true"),
        "{}",
        broker_info(nats_port)
    );
    // The `local` profile holds an admin API token, so the CLI is signed in already.
    let whoami = tutti(&config_home, &["whoami", "--json"]);
    let me: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap_or_else(|err| {
        panic!(
            "whoami --json is JSON ({err}): {}",
            String::from_utf8_lossy(&whoami.stderr)
        )
    });
    assert_eq!(me["role"], "admin", "{me}");
    let output = tutti(
        &config_home,
        &["run", "--all", "--wait", "--", "echo", "hello"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "run failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("hello") && stdout.contains("succeeded"),
        "{stdout}"
    );

    // One run id finds the run's whole life in the log: the server creating it (the `run`
    // span) and the agent recording its result (the `command` span).
    let runs = tutti(&config_home, &["runs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("runs --json");
    let run_id = listed["items"][0]["run_id"]
        .as_str()
        .expect("a run id")
        .to_string();
    let log = std::fs::read_to_string(data_dir.join("tutti.log")).expect("tutti.log");
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&format!("run_id={run_id}")))
        .collect();
    for (span, message) in [
        ("run{", "Created a run."),
        ("command{", "Result recorded in the outbox"),
    ] {
        assert!(
            lines
                .iter()
                .any(|line| line.contains(span) && line.contains(message)),
            "no {span} line with {message:?} for run {run_id} in:\n{}",
            lines.join("\n")
        );
    }

    let failing = tutti(&config_home, &["run", "--all", "--wait", "--", "exit 3"]);
    assert_eq!(
        failing.status.code(),
        Some(1),
        "a failed target gives exit code 1"
    );
    assert!(up.interrupt().success());
    // Everything stopped: the ports are free again.
    std::net::TcpListener::bind(("127.0.0.1", http_port)).expect("HTTP port released");
    std::net::TcpListener::bind(("127.0.0.1", nats_port)).expect("broker port released");

    let up = Up::start(&data_dir, &config_home, http_port, nats_port);
    let runs = tutti(&config_home, &["runs", "--json"]);
    let listed: serde_json::Value =
        serde_json::from_slice(&runs.stdout).expect("runs --json is JSON");
    assert_eq!(listed["total"], 2, "both runs survive a restart: {listed}");
    assert!(up.interrupt().success());
}

#[test]
fn up_with_tls_runs_hello_over_tls_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config_home = dir.path().join("config");
    let (http_port, nats_port) = (free_port(), free_port());

    let up = Up::start_with(&data_dir, &config_home, http_port, nats_port, &["--tls"]);
    let profile = std::fs::read_to_string(config_home.join("tutti/cli.toml")).unwrap();
    assert!(
        profile.contains(&format!("server = \"https://127.0.0.1:{http_port}\"")),
        "{profile}"
    );
    let output = tutti(
        &config_home,
        &["run", "--all", "--wait", "--", "echo", "hello"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("hello") && stdout.contains("succeeded"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The broker speaks only TLS, so the agent that ran `echo` connected over TLS.
    let broker_config = std::fs::read_to_string(data_dir.join("nats/nats.conf")).unwrap();
    assert!(broker_config.contains("tls {"), "{broker_config}");
    let plain = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{http_port}/healthz"),
        ])
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "plain HTTP is not served next to HTTPS"
    );
    let check = tutti(
        &config_home,
        &[
            "server",
            "--check",
            "--config",
            &data_dir.join("server.toml").display().to_string(),
        ],
    );
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(up.interrupt().success());
}

/// A data directory from before per-agent broker identities keeps its open broker (its
/// streams live where an open broker keeps them), and `up` says so.
#[test]
fn an_older_data_dir_keeps_its_open_broker_and_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(data_dir.join("nats").join("jetstream")).unwrap();
    let config_home = dir.path().join("config");
    let (http_port, nats_port) = (free_port(), free_port());
    let up = Up::start(&data_dir, &config_home, http_port, nats_port);
    assert!(
        broker_info(nats_port).contains("\"auth_required\":false")
            || !broker_info(nats_port).contains("auth_required"),
        "{}",
        broker_info(nats_port)
    );
    assert!(!data_dir.join("broker-keys").exists());
    let output = tutti(
        &config_home,
        &["run", "--all", "--wait", "--", "echo", "hello"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(up.interrupt().success());
}

#[test]
fn a_port_in_use_is_named_with_the_flag_to_change_it() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["up", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&port.to_string()) && stderr.contains("--http"),
        "{stderr}"
    );
}

#[test]
fn commands_without_a_profile_say_how_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let output = tutti(dir.path(), &["agents"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("tutti login") && stderr.contains("tutti up"),
        "{stderr}"
    );
}
