//! The deployment story of `docs/deploy.md`, with real processes and TLS everywhere: a
//! `nats-server` speaking only TLS, `tutti server --config` as its own process serving
//! HTTPS, an operator signing in with `tutti login --ca`, agents enrolled with `tutti-agent
//! enroll --ca --server-key-id` and one more through the served install script, a run to
//! all of them, SIGHUP (certificate reload), SIGTERM (clean stop, exit 0) and a restart
//! that keeps everything. Enrollments that must be refused (plain http to another host, an
//! untrusted certificate, a wrong key id, a tampered download) store nothing on either side.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use tutti_server::pki::LocalPki;
use tutti_testkit::{TestNats, TestNatsOptions};

use common::{expect_code, parse, tutti_with};

const WAIT: Duration = Duration::from_secs(60);
const NEW_PASSWORD: &str = "a-long-deployment-password-42";

/// The agent binary built beside `tutti` by `cargo test --workspace`.
fn agent_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_tutti")).with_file_name("tutti-agent");
    assert!(
        path.exists(),
        "{} is missing: the deployment test runs the real agent binary, which `cargo test --workspace` builds",
        path.display()
    );
    path
}

/// A child process killed on drop, its stderr in a file.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn");
        Process { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: Signal) {
        signal::kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit and returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `text`.
    async fn wait_log(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.log().contains(text) {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "exited before logging {text:?}:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "never logged {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one deployment needs on disk: certificates, the server config, the agent
/// binaries the server hands out, the operator's CLI profile.
struct Site {
    dir: TempDir,
    ca_file: PathBuf,
    config: PathBuf,
    url: String,
    binary_dir: PathBuf,
}

impl Site {
    fn new(nats_url: &str, keys_dir: &Path, pki: &LocalPki, dir: TempDir) -> Site {
        let http = pki.issue("server", &["127.0.0.1".to_string()]).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary_dir = dir.path().join("agents");
        std::fs::create_dir_all(&binary_dir).unwrap();
        let binary_name = format!("tutti-agent-linux-{}", std::env::consts::ARCH);
        std::fs::copy(agent_binary(), binary_dir.join(binary_name)).unwrap();
        let config = dir.path().join("server.toml");
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n\n\
             [bus]\nurls = [\"{nats_url}\"]\ntls = {{ required = true, ca_file = {ca:?} }}\n\n\
             [storage]\nbudget_bytes = 1073741824\n\n\
             [enrollment]\nnats_require_tls = true\nagent_binary_dir = {binaries:?}\n\n\
             [broker_identity]\nkeys_dir = {keys:?}\n\n\
             [http]\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n\n\
             [projector]\nbatch_window_ms = 50\n",
            data = dir.path().join("server").display().to_string(),
            ca = pki.ca_cert.display().to_string(),
            binaries = binary_dir.display().to_string(),
            keys = keys_dir.display().to_string(),
            cert = http.cert_file.display().to_string(),
            key = http.key_file.display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        Site {
            ca_file: pki.ca_cert.clone(),
            config,
            url: format!("https://127.0.0.1:{port}"),
            binary_dir,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tutti server --config server.toml`, ready once `/healthz` answers over HTTPS.
    async fn start_server(&self, log: &str) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
        command
            .args(["server", "--config"])
            .arg(&self.config)
            .env_remove("TUTTI_LOG");
        let mut server = Process::spawn(&mut command, self.path(log));
        server.wait_log("tutti server: listening on https://").await;
        let client = https_client(&self.ca_file);
        let response = client.get(format!("{}/healthz", self.url)).send().await;
        assert!(response.is_ok_and(|r| r.status().is_success()));
        server
    }

    /// The operator's CLI, with the profile in this site's directory.
    async fn tutti(&self, stdin: &str, args: &[&str]) -> std::process::Output {
        tutti_with(&self.path("cli"), &[], stdin, args).await
    }

    /// `tutti-agent enroll` with `extra` arguments and a config whose state is `state`.
    fn enroll(&self, state: &str, extra: &[&str]) -> std::process::Output {
        let config = self.agent_config(state);
        Command::new(agent_binary())
            .args(["enroll", "--config"])
            .arg(&config)
            .args(extra)
            .output()
            .unwrap()
    }

    fn agent_config(&self, state: &str) -> PathBuf {
        let config = self.path(&format!("{state}.toml"));
        let state_dir = self.path(state);
        std::fs::write(
            &config,
            format!("state_dir = {:?}\n", state_dir.display().to_string()),
        )
        .unwrap();
        config
    }

    fn run_agent(&self, binary: &Path, config: &Path, log: &str) -> Process {
        let mut command = Command::new(binary);
        command.args(["run", "--config"]).arg(config);
        Process::spawn(&mut command, self.path(log))
    }
}

fn https_client(ca_file: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_file).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// A broker that speaks only TLS, with a certificate from `pki`.
fn tls_broker(pki: &LocalPki) -> (TestNats, String) {
    let cert = pki.issue("broker", &["127.0.0.1".to_string()]).unwrap();
    let extra_config = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
        cert.cert_file.display().to_string(),
        cert.key_file.display().to_string()
    );
    let nats = TestNats::start_with(TestNatsOptions {
        extra_config,
        ..TestNatsOptions::default()
    });
    let url = format!("tls://127.0.0.1:{}", nats.port());
    (nats, url)
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_deployment_enrolls_runs_reloads_stops_and_restarts() {
    let dir = TempDir::new().unwrap();
    let pki = LocalPki::load_or_create(&dir.path().join("pki")).unwrap();
    let (nats, nats_url) = tls_broker(&pki);
    let keys_dir = nats.keys_dir().expect("operator mode").to_path_buf();
    let site = Site::new(&nats_url, &keys_dir, &pki, dir);
    let mut server = site.start_server("server.log").await;

    // Session cookies are authenticated with their own key, not the command-signing key.
    let signing = std::fs::read(site.path("server/signing.key")).unwrap();
    let session = std::fs::read(site.path("server/session.key")).unwrap();
    assert_ne!(signing, session);
    // The first admin's password is shown once by the binary and kept in a 0600 file.
    let password_file = site.path("server/initial-admin-password");
    let initial = std::fs::read_to_string(&password_file).unwrap();
    assert!(
        server
            .log()
            .contains(&format!("password `{}`", initial.trim()))
    );
    let ca = site.ca_file.display().to_string();
    let login = site
        .tutti(
            &format!("{}\n{NEW_PASSWORD}\n", initial.trim()),
            &[
                "login",
                "--server",
                &site.url,
                "--user",
                "admin",
                "--ca",
                &ca,
                "--password-stdin",
            ],
        )
        .await;
    expect_code(&login, 0);

    let created = parse(&expect_code(
        &site
            .tutti("", &["enroll-token", "create", "--uses", "5", "--json"])
            .await,
        0,
    ));
    let token = created["token"].as_str().unwrap().to_string();
    let key_id = created["server_key_id"].as_str().unwrap().to_string();
    assert_eq!(created["install_script"], true);
    refusals_store_nothing(&site, &token, &key_id).await;

    for name in ["web-01", "web-02"] {
        let enrolled = site.enroll(
            name,
            &[
                "--server",
                &site.url,
                "--token",
                &token,
                "--id",
                name,
                "--ca",
                &ca,
                "--server-key-id",
                &key_id,
            ],
        );
        assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    }
    let mut agents: Vec<Process> = ["web-01", "web-02"]
        .iter()
        .map(|name| {
            let config = site.path(&format!("{name}.toml"));
            site.run_agent(&agent_binary(), &config, &format!("{name}.log"))
        })
        .collect();
    agents.push(install_with_the_script(&site, &token).await);

    let run = site
        .tutti(
            "",
            &["run", "--all", "--wait", "--json", "--", "echo", "hello"],
        )
        .await;
    let results = parse(&expect_code(&run, 0));
    let mut states: Vec<(&str, &str)> = results["run"]["targets"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{results:#}"))
        .iter()
        .map(|result| {
            (
                result["agent_id"].as_str().unwrap(),
                result["state"].as_str().unwrap(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("web-01", "succeeded"),
            ("web-02", "succeeded"),
            ("web-03", "succeeded")
        ],
        "{results:#}"
    );

    server.signal(Signal::SIGHUP);
    server.wait_log("reloaded the HTTPS certificate").await;
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit();
    assert!(status.success(), "SIGTERM stops cleanly:\n{}", server.log());
    assert!(server.log().contains("tutti server: stopped"));

    let _server = site.start_server("server-again.log").await;
    let runs = parse(&expect_code(&site.tutti("", &["runs", "--json"]).await, 0));
    assert_eq!(runs["total"], 1, "{runs:#}");
    let listed = parse(&expect_code(
        &site.tutti("", &["agents", "--json"]).await,
        0,
    ));
    assert_eq!(listed["total"], 3, "{listed:#}");
    for agent in &mut agents {
        assert!(agent.child.try_wait().unwrap().is_none(), "{}", agent.log());
    }
}

/// Each refusal leaves no identity on the machine, no agent row on the server and the
/// token's uses untouched.
async fn refusals_store_nothing(site: &Site, token: &str, key_id: &str) {
    let ca = site.ca_file.display().to_string();
    let plain = site.enroll(
        "refused-1",
        &[
            "--server",
            "http://tutti.example.invalid:8080",
            "--token",
            token,
        ],
    );
    assert!(
        stderr(&plain).contains("refusing to enroll over plain http://"),
        "{}",
        stderr(&plain)
    );
    let untrusted = site.enroll("refused-2", &["--server", &site.url, "--token", token]);
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );
    let wrong_key = site.enroll(
        "refused-3",
        &[
            "--server",
            &site.url,
            "--token",
            token,
            "--ca",
            &ca,
            "--server-key-id",
            "0000000000000000",
        ],
    );
    let message = stderr(&wrong_key);
    assert!(
        message.contains(&format!(
            "signs commands with key {key_id}, not 0000000000000000"
        )),
        "{message}"
    );
    for (state, output) in [
        ("refused-1", &plain),
        ("refused-2", &untrusted),
        ("refused-3", &wrong_key),
    ] {
        assert_eq!(output.status.code(), Some(1), "{state}: {}", stderr(output));
        assert!(
            !site.path(state).join("identity.json").exists(),
            "{state} stored an identity"
        );
    }
    let agents = parse(&expect_code(
        &site.tutti("", &["agents", "--json"]).await,
        0,
    ));
    assert_eq!(agents["total"], 0, "{agents:#}");
    let tokens = parse(&expect_code(
        &site.tutti("", &["enroll-token", "list", "--json"]).await,
        0,
    ));
    assert_eq!(tokens["items"][0]["uses_left"], 5, "{tokens:#}");
}

/// The operator's one-liner, pointed at a directory instead of `/`: the script checks the
/// binary's sha256, enrolls pinning the key and the CA, and installs the unit. A binary
/// tampered with after the script was served is refused, and nothing is installed.
async fn install_with_the_script(site: &Site, token: &str) -> Process {
    let url = format!("{}/install.sh?token={token}", site.url);
    let script = https_client(&site.ca_file)
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let script_file = site.path("install.sh");
    std::fs::write(&script_file, &script).unwrap();
    let root = site.path("root");
    let installed = Command::new("sh")
        .arg(&script_file)
        .env("TUTTI_CA", &site.ca_file)
        .env("TUTTI_INSTALL_ROOT", &root)
        .env("TUTTI_AGENT_ID", "web-03")
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", stderr(&installed));
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/tutti-agent.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/tutti-agent run --config /etc/tutti/agent.toml"),
        "{unit}"
    );
    assert!(root.join("var/lib/tutti-agent/identity.json").exists());

    let binary = site
        .binary_dir
        .join(format!("tutti-agent-linux-{}", std::env::consts::ARCH));
    let genuine = std::fs::read(&binary).unwrap();
    std::fs::write(&binary, b"#!/bin/sh\necho not the agent\n").unwrap();
    let other_root = site.path("root-tampered");
    let tampered = Command::new("sh")
        .arg(&script_file)
        .env("TUTTI_CA", &site.ca_file)
        .env("TUTTI_INSTALL_ROOT", &other_root)
        .env("TUTTI_AGENT_ID", "web-04")
        .output()
        .unwrap();
    assert!(!tampered.status.success());
    assert!(
        stderr(&tampered).contains("sha256"),
        "{}",
        stderr(&tampered)
    );
    assert!(!other_root.join("usr/local/bin/tutti-agent").exists());
    std::fs::write(&binary, genuine).unwrap();

    site.run_agent(
        &root.join("usr/local/bin/tutti-agent"),
        &root.join("etc/tutti/agent.toml"),
        "web-03.log",
    )
}
