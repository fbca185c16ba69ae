//! `TestAgent`: a real agent that enrolls through the server's HTTP endpoint (with
//! `tutti_agent::enroll::enroll`, exactly as the binary does) and then runs in-process.
//!
//! ```no_run
//! # async fn example(server: &tutti_testkit::TestServer) {
//! let mut agent = tutti_testkit::TestAgent::enroll(server, "web-01").await;
//! agent.start();
//! agent.stop().await; // its state (cursor, outbox) stays for the next start
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;
use tutti_agent::enroll::EnrollOptions;
use tutti_agent::{AgentOptions, Identity, LocalConfig};
use tutti_proto::AgentId;

use crate::TestServer;

/// An enrolled agent, running or stopped.
#[derive(Debug)]
pub struct TestAgent {
    identity: Identity,
    running: Option<Running>,
    dir: TempDir,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestAgent {
    /// Enrolls an agent named `name` with a fresh token from `server`; not started yet.
    pub async fn enroll(server: &TestServer, name: &str) -> TestAgent {
        let token = server.enrollment_token().await;
        TestAgent::enroll_with_token(server, name, &token).await
    }

    /// Enrolls an agent named `name` with `token` (e.g. one that assigns groups); not
    /// started yet.
    pub async fn enroll_with_token(server: &TestServer, name: &str, token: &str) -> TestAgent {
        let dir = tempfile::Builder::new()
            .prefix("tutti-agent-")
            .tempdir()
            .expect("temp dir");
        let options = EnrollOptions {
            requested_id: Some(AgentId::parse(name).expect("valid agent name")),
            hostname: Some(format!("{name}.test")),
            ..EnrollOptions::default()
        };
        let identity = tutti_agent::enroll::enroll(&server.url(), token, dir.path(), options)
            .await
            .expect("enrollment through the server's HTTP endpoint");
        TestAgent {
            identity,
            running: None,
            dir,
        }
    }

    /// Enrolls and starts.
    pub async fn spawn(server: &TestServer, name: &str) -> TestAgent {
        let mut agent = TestAgent::enroll(server, name).await;
        agent.start();
        agent
    }

    /// The agent's id.
    pub fn agent_id(&self) -> &AgentId {
        &self.identity.agent_id
    }

    /// What enrollment handed the agent.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Runs the agent in this process (no-op when it already runs).
    pub fn start(&mut self) {
        self.start_with(|_| {});
    }

    /// Runs the agent after `edit` adjusted its `agent.toml` settings (no-op when it
    /// already runs).
    pub fn start_with(&mut self, edit: impl FnOnce(&mut LocalConfig)) {
        if self.running.is_some() {
            return;
        }
        let mut config = LocalConfig {
            state_dir: self.dir.path().to_path_buf(),
            ..LocalConfig::default()
        };
        edit(&mut config);
        let options = AgentOptions {
            timings: Some(tutti_agent::exec::ExecTimings {
                kill_grace: Duration::from_millis(500),
                output_drain: Duration::from_millis(500),
            }),
            ..AgentOptions::default()
        };
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
            };
            tutti_agent::run(config, options, shutdown).await
        });
        self.running = Some(Running { stop, task });
    }

    /// Stops the agent and waits for it; its state stays for the next start.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            running
                .task
                .await
                .expect("agent task")
                .expect("agent stops cleanly");
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
    }
}
