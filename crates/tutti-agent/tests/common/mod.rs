//! The agent tests' harness: a real broker with tutti's resources, a publisher that signs
//! commands the way the server will, agents run in-process or as real processes, and an
//! observer that reads what agents report.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]
#![allow(unreachable_pub, reason = "a test-only module shared by test files")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::oneshot;
use tutti_agent::{Identity, LocalConfig};
use tutti_bus::{Bus, connect, ensure_resources};
use tutti_proto::catalog::{Catalog, CatalogConfig, EVENTS_STREAM, RESULTS_STREAM};
use tutti_proto::command::{Command, CommandBody, JobRef, KillCommand, RunCommand, Script, Shell};
use tutti_proto::event::AgentEvent;
use tutti_proto::result::RunResult;
use tutti_proto::sign::SignedCommand;
use tutti_proto::{AgentId, CommandId, GroupName, JobId, RunId, digest, subjects};
use tutti_testkit::TestNats;

pub const WAIT: Duration = Duration::from_secs(30);

/// A broker with every tutti resource created.
pub struct Fleet {
    pub nats: TestNats,
    pub bus: Bus,
    pub key: SigningKey,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TUTTI_LOG").unwrap_or_else(|_| "info".into()))
            .with_test_writer()
            .try_init();
        let nats = TestNats::start();
        let bus = connect(&nats.bus_config()).await.expect("connect");
        let catalog = Catalog::tutti(&CatalogConfig {
            storage_budget_bytes: 1 << 30,
            replicas: 1,
        });
        ensure_resources(&bus, &catalog).await.expect("bootstrap");
        Fleet {
            nats,
            bus,
            key: SigningKey::from_bytes(&[7u8; 32]),
        }
    }

    /// Writes an enrolled identity for `name` into a fresh state dir. Like the server's
    /// enrollment, it pins the commands stream's current last sequence as the start point.
    pub async fn enroll(&self, name: &str, groups: &[&str]) -> TestAgentSpec {
        let dir = tempfile::Builder::new()
            .prefix("tutti-agent-")
            .tempdir()
            .expect("temp dir");
        let agent_id = AgentId::parse(name).unwrap();
        let mut identity = Identity::new(
            agent_id.clone(),
            vec![self.nats.url()],
            &self.key.verifying_key(),
        );
        identity.initial_groups = groups
            .iter()
            .map(|g| GroupName::parse(g).unwrap())
            .collect();
        identity.nats_auth = self.agent_creds(&agent_id);
        let mut commands = self
            .bus
            .jetstream()
            .get_stream(tutti_proto::catalog::COMMANDS_STREAM)
            .await
            .unwrap();
        identity.start_after_seq = Some(commands.info().await.unwrap().state.last_sequence);
        tutti_agent::identity::save(dir.path(), &identity).expect("save identity");
        TestAgentSpec { agent_id, dir }
    }

    /// The agent's own broker user with the permissions the server would issue, as
    /// enrollment hands it out: agent tests run inside the real permission table.
    fn agent_creds(&self, agent_id: &AgentId) -> tutti_bus::Auth {
        let auth = self
            .nats
            .broker_auth()
            .expect("the test broker runs in operator mode");
        let key = nkeys::KeyPair::new_user();
        let user_jwt = auth
            .user_jwt(
                &key.public_key(),
                &format!("agent:{agent_id}"),
                &tutti_bus::agent_permissions::agent_permissions(agent_id),
                &tutti_bus::agent_permissions::agent_limits(),
            )
            .expect("a user JWT");
        let creds = tutti_bus::auth::creds_for_key_pair(&user_jwt, &key).expect("creds");
        tutti_bus::Auth::Creds { creds }
    }

    pub fn run_command(&self, subject: String, script: &str) -> (RunId, Command) {
        self.command_with(subject, script, |_| {})
    }

    pub fn command_with(
        &self,
        subject: String,
        script: &str,
        edit: impl FnOnce(&mut RunCommand),
    ) -> (RunId, Command) {
        let run_id = RunId::new(ulid::Ulid::new());
        let mut run = RunCommand {
            run_id,
            job: JobRef {
                job_id: JobId::parse("test-job").unwrap(),
                version: 1,
            },
            script: Script::Inline {
                body: script.to_string(),
            },
            sha256: digest::sha256_hex(script.as_bytes()),
            shell: Shell::Sh,
            timeout_secs: 30,
            env: BTreeMap::new(),
            cwd: None,
            user: None,
            output_limit_bytes: 1 << 20,
            deadline: None,
            scheduled: false,
        };
        edit(&mut run);
        (run_id, command(subject, CommandBody::Run(run)))
    }

    pub fn kill_command(&self, subject: String, run_id: &RunId) -> Command {
        command(subject, CommandBody::Kill(KillCommand { run_id: *run_id }))
    }

    /// Signs and publishes; returns the stream sequence.
    pub async fn publish(&self, command: &Command) -> u64 {
        let signed = SignedCommand::sign(command, &self.key);
        self.publish_raw(
            &command.subject,
            &command.command_id.to_string(),
            signed.to_bytes(),
        )
        .await
    }

    pub async fn publish_raw(&self, subject: &str, msg_id: &str, payload: Vec<u8>) -> u64 {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        let ack = self
            .bus
            .jetstream()
            .publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("ack");
        ack.sequence
    }

    /// Every result in the results stream so far, after waiting for `count` of them.
    pub async fn results(&self, count: usize) -> Vec<RunResult> {
        self.read_stream(RESULTS_STREAM, count).await
    }

    pub async fn read_inventory<T: for<'de> serde::Deserialize<'de>>(
        &self,
        count: usize,
    ) -> Vec<T> {
        self.read_stream(tutti_proto::catalog::INVENTORY_STREAM, count)
            .await
    }

    pub async fn events(&self, count: usize) -> Vec<AgentEvent> {
        self.read_stream(EVENTS_STREAM, count).await
    }

    async fn read_stream<T: for<'de> serde::Deserialize<'de>>(
        &self,
        stream: &str,
        count: usize,
    ) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let items: Vec<T> = self.snapshot(stream).await;
            if items.len() >= count {
                return items;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {count} messages in {stream}",
                items.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The stream's current messages, decoded (an ephemeral ordered read, no waiting).
    pub async fn snapshot<T: for<'de> serde::Deserialize<'de>>(&self, stream: &str) -> Vec<T> {
        let mut handle = self
            .bus
            .jetstream()
            .get_stream(stream)
            .await
            .expect("stream");
        let total = handle.info().await.expect("info").state.messages as usize;
        if total == 0 {
            return Vec::new();
        }
        let consumer = handle
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut items = Vec::with_capacity(total);
        while items.len() < total {
            let message = tokio::time::timeout(WAIT, messages.next())
                .await
                .expect("read")
                .expect("some")
                .expect("ok");
            items.push(serde_json::from_slice(&message.payload).expect("decode"));
        }
        items
    }
}

fn command(subject: String, body: CommandBody) -> Command {
    Command {
        command_id: CommandId::new(ulid::Ulid::new()),
        subject,
        issued_at: Timestamp::now(),
        expires_at: None,
        body,
    }
}

/// An enrolled agent's state directory.
pub struct TestAgentSpec {
    pub agent_id: AgentId,
    pub dir: tempfile::TempDir,
}

impl TestAgentSpec {
    pub fn config(&self) -> LocalConfig {
        LocalConfig {
            state_dir: self.dir.path().to_path_buf(),
            ..LocalConfig::default()
        }
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the agent in this process until the returned handle is stopped or dropped.
    pub fn start(&self) -> RunningAgent {
        self.start_with(self.config(), test_options())
    }

    /// Runs the agent with `config` and `options` (see [`test_options`]).
    pub fn start_with(
        &self,
        config: LocalConfig,
        options: tutti_agent::AgentOptions,
    ) -> RunningAgent {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
            };
            tutti_agent::run(config, options, shutdown).await
        });
        RunningAgent {
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// Writes a config file and returns its path (for the real binary).
    pub fn write_config_file(&self) -> PathBuf {
        let path = self.dir.path().join("agent.toml");
        let text = format!(
            "state_dir = {:?}\nlog_level = \"debug\"\n[execution]\nkill_grace_ms = 500\n",
            self.dir.path().display().to_string()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts the real `tutti-agent` binary.
    pub fn spawn_process(&self) -> std::process::Child {
        let config = self.write_config_file();
        std::process::Command::new(env!("CARGO_BIN_EXE_tutti-agent"))
            .args(["run", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("agent.log")).unwrap())
            .spawn()
            .expect("spawn tutti-agent")
    }
}

/// The options every test agent runs with: short kill and drain timings.
pub fn test_options() -> tutti_agent::AgentOptions {
    tutti_agent::AgentOptions {
        timings: Some(tutti_agent::exec::ExecTimings {
            kill_grace: Duration::from_millis(500),
            output_drain: Duration::from_millis(500),
        }),
        ..Default::default()
    }
}

pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningAgent {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("agent task").expect("agent run");
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn all() -> String {
    subjects::cmd_all()
}

pub fn group(name: &str) -> String {
    subjects::cmd_group(&GroupName::parse(name).unwrap())
}

pub fn agent(name: &str) -> String {
    subjects::cmd_agent(&AgentId::parse(name).unwrap())
}

pub fn results_for<'a>(results: &'a [RunResult], agent_id: &str) -> Vec<&'a RunResult> {
    results
        .iter()
        .filter(|r| r.agent_id.as_str() == agent_id)
        .collect()
}
