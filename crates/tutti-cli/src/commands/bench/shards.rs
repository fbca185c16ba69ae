//! Simulated agents in child processes (`tutti bench sim-agents`), for two reasons: the
//! `footprint` scenario measures the server's process without the agents in it, and a fleet
//! larger than [`AGENTS_PER_PROCESS`] does not fit one process's open-files limit (each
//! agent holds a socket and five database files; where the hard limit cannot be raised, as
//! in a container without `CAP_SYS_RESOURCE`, 20,000 files hold about 2,800 agents).
//!
//! Each child enrolls and runs its share with the same code as the in-process simulator,
//! prints `ready`, and stops its agents when its standard input closes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tutti_proto::AgentId;

use super::sim;

/// Agents one child process runs at most.
pub(crate) const AGENTS_PER_PROCESS: usize = 2000;
/// How long children get to stop before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Running child processes of simulated agents.
#[derive(Debug)]
pub(crate) struct ChildFleet {
    children: Vec<Child>,
    agent_ids: Vec<AgentId>,
}

/// What the children are told.
#[derive(Debug, Clone)]
pub(crate) struct ShardPlan<'a> {
    pub(crate) server_url: &'a str,
    pub(crate) token: &'a str,
    pub(crate) root: &'a Path,
    /// Agent ids are `<prefix><shard>-00001`…
    pub(crate) prefix: &'a str,
    pub(crate) n_agents: usize,
    pub(crate) baseline_responders: bool,
}

impl ChildFleet {
    /// The child processes' ids.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Starts children of at most [`AGENTS_PER_PROCESS`] agents each and waits until every
    /// one has started its agents.
    pub(crate) async fn start(plan: ShardPlan<'_>) -> anyhow::Result<ChildFleet> {
        let mut fleet = ChildFleet {
            children: Vec::new(),
            agent_ids: Vec::new(),
        };
        let mut remaining = plan.n_agents;
        let mut waits = Vec::new();
        for shard in 0.. {
            if remaining == 0 {
                break;
            }
            let n_shard = remaining.min(AGENTS_PER_PROCESS);
            remaining -= n_shard;
            let prefix = format!("{}{shard}", plan.prefix);
            for n in 1..=n_shard {
                let name = format!("{prefix}-{n:05}");
                fleet
                    .agent_ids
                    .push(AgentId::parse(&name).map_err(anyhow::Error::msg)?);
            }
            let (child, ready) = spawn(&plan, &prefix, n_shard)?;
            fleet.children.push(child);
            waits.push(ready);
        }
        let timeout = sim::startup_timeout(plan.n_agents);
        let readiness = futures::future::join_all(waits);
        match tokio::time::timeout(timeout, readiness).await {
            Ok(outcomes) if outcomes.iter().all(|ready| *ready) => Ok(fleet),
            _ => {
                fleet.stop_all().await;
                bail!("a process of simulated agents did not get ready within {timeout:?}")
            }
        }
    }

    /// Every agent id, in order.
    pub(crate) fn agent_ids(&self) -> Vec<AgentId> {
        self.agent_ids.clone()
    }

    /// Closes the children's standard input (they stop their agents), then SIGKILL for
    /// those that do not exit in time.
    pub(crate) async fn stop_all(&mut self) {
        stop_children(std::mem::take(&mut self.children), Stop::CloseStdin).await;
    }
}

/// Starts one child; the future resolves to whether it printed `ready`.
fn spawn(
    plan: &ShardPlan<'_>,
    prefix: &str,
    n_agents: usize,
) -> anyhow::Result<(Child, impl Future<Output = bool> + use<>)> {
    let exe = std::env::current_exe().context("locate the tutti executable")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "sim-agents", "--server", plan.server_url])
        .args(["--token", plan.token, "--prefix", prefix])
        .arg("--agents")
        .arg(n_agents.to_string())
        .arg("--start-rate")
        .arg(
            (super::sim::START_RATE / plan.n_agents.div_ceil(AGENTS_PER_PROCESS).max(1))
                .max(1)
                .to_string(),
        )
        .arg("--dir")
        .arg(plan.root.join(prefix));
    if let Some(log) = super::CHILD_LOG.get() {
        command.env(super::CHILD_LOG_ENV, log);
    }
    if plan.baseline_responders {
        command.arg("--baseline-responders");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("start a process of simulated agents")?;
    let stdout = child.stdout.take().context("the child has no stdout")?;
    let ready = async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        matches!(lines.next_line().await, Ok(Some(line)) if line.trim() == "ready")
    };
    Ok((child, ready))
}

/// How a child is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Close its standard input (`tutti bench sim-agents`).
    CloseStdin,
    /// Send SIGTERM (`tutti-agent run`).
    Terminate,
}

/// Stops child processes the way they expect, then SIGKILL after [`STOP_GRACE`].
pub(crate) async fn stop_children(children: Vec<Child>, how: Stop) {
    let waits = children.into_iter().map(|mut child| async move {
        drop(child.stdin.take());
        if let (Stop::Terminate, Some(pid)) = (how, child.id()) {
            let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    });
    futures::future::join_all(waits).await;
}
