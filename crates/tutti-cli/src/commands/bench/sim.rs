//! The fleet simulator: N real agents in this process. Each one enrolls through the
//! server's real `POST /api/v1/enroll` and then runs `tutti_agent::run` (intake and
//! signature check, gates, executor, outbox, heartbeat, fleet-state replica) with its own
//! broker connection, identity and state directory. Only the process count is simulated.
//!
//! Two hooks of `AgentOptions` serve the simulator: `skip_inventory` (ten thousand agents
//! must not each run the package managers at start) and `client_tap`, which hands over each
//! agent's broker client so the fanout baseline runs on the very same connections.
//!
//! [`HeartbeatWatch`] is how scenarios learn that agents are up: it records when each
//! agent's heartbeat was last seen on the bus.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tutti_agent::enroll::EnrollOptions;
use tutti_agent::{AgentOptions, LocalConfig};
use tutti_proto::{AgentId, subjects};

use super::report::Progress;
use crate::args::SimAgentsArgs;

/// Agents started per second across a whole simulated fleet. Each start creates the agent's
/// command consumer and its fleet-state watcher (a few JetStream API calls); the pinned
/// broker drops API requests beyond a queue of 10,000 ("JetStream API info queue limit
/// reached"), and agents that time out retry, so 10,000 agents started at once flood it
/// (seen with the earlier five consumers per agent: 4,000 of 50,000 consumers after six
/// minutes, the broker at 12 GB). A fleet coming up at this pace is what a staged rollout
/// or a rack power-on looks like.
pub(crate) const START_RATE: usize = 250;
/// The fanout baseline's subject. Not part of the protocol: only the benchmark uses it.
pub(crate) const BASELINE_SUBJECT: &str = "tutti.bench.baseline";

/// Enrollments in flight at once.
const ENROLL_CONCURRENCY: usize = 32;
/// How long stopping agents may take before they are aborted.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Simulated agents, enrolled, running or stopped.
#[derive(Debug)]
pub(crate) struct SimFleet {
    agents: Vec<SimAgent>,
    /// Where agents started from now on hand over their broker client, if anywhere.
    clients_tx: Option<mpsc::UnboundedSender<async_nats::Client>>,
}

#[derive(Debug)]
struct SimAgent {
    agent_id: AgentId,
    state_dir: PathBuf,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl SimFleet {
    /// Enrolls `n_agents` agents named `<prefix>-00001`… with state under `root`; none is
    /// started yet.
    pub(crate) async fn enroll(
        server_url: &str,
        token: &str,
        root: &Path,
        prefix: &str,
        n_agents: usize,
        progress: &Progress,
    ) -> anyhow::Result<SimFleet> {
        let bar = progress.bar(n_agents, "enrolling");
        let enrollments = futures::stream::iter(0..n_agents)
            .map(|idx| {
                let bar = bar.clone();
                async move {
                    let agent = enroll_one(server_url, token, root, prefix, idx).await;
                    bar.inc(1);
                    agent
                }
            })
            .buffered(ENROLL_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        bar.finish_and_clear();
        let agents = enrollments
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SimFleet {
            agents,
            clients_tx: None,
        })
    }

    /// The agents' ids, in order.
    pub(crate) fn agent_ids(&self) -> Vec<AgentId> {
        self.agents
            .iter()
            .map(|agent| agent.agent_id.clone())
            .collect()
    }

    /// Starts every agent that is not running, `per_second` agents a second.
    pub(crate) async fn start_all(&mut self, per_second: usize) {
        let per_tick = (per_second / 10).max(1);
        for idx in 0..self.agents.len() {
            self.start(idx);
            if (idx + 1) % per_tick == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Starts agent `idx` (no-op when it runs).
    pub(crate) fn start(&mut self, idx: usize) {
        let clients_tx = self.clients_tx.clone();
        let Some(agent) = self.agents.get_mut(idx) else {
            return;
        };
        if agent.running.is_some() {
            return;
        }
        let config = LocalConfig {
            state_dir: agent.state_dir.clone(),
            ..LocalConfig::default()
        };
        let options = AgentOptions {
            skip_inventory: true,
            client_tap: clients_tx,
            ..AgentOptions::default()
        };
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.await;
            };
            tutti_agent::run(config, options, shutdown).await
        });
        agent.running = Some(Running { stop, task });
    }

    /// Stops agent `idx` and waits for it; its state stays for the next start.
    pub(crate) async fn stop(&mut self, idx: usize) -> anyhow::Result<()> {
        let Some(running) = self.agents.get_mut(idx).and_then(|a| a.running.take()) else {
            return Ok(());
        };
        let _ = running.stop.send(());
        tokio::time::timeout(STOP_TIMEOUT, running.task)
            .await
            .context("a simulated agent did not stop in time")?
            .context("a simulated agent's task failed")?
    }

    /// Stops every running agent, aborting those that do not stop in time.
    pub(crate) async fn stop_all(&mut self) {
        let running: Vec<Running> = self
            .agents
            .iter_mut()
            .filter_map(|agent| agent.running.take())
            .collect();
        let mut tasks = Vec::with_capacity(running.len());
        for agent in running {
            let _ = agent.stop.send(());
            tasks.push(agent.task);
        }
        let aborts: Vec<_> = tasks.iter().map(|task| task.abort_handle()).collect();
        let joined = tokio::time::timeout(STOP_TIMEOUT, futures::future::join_all(tasks)).await;
        if joined.is_err() {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    /// From now on, every agent that starts hands its broker client over to the returned
    /// receiver. Only scenarios that need the clients ask: a held clone keeps a stopped
    /// agent's connection open.
    pub(crate) fn tap_clients(&mut self) -> mpsc::UnboundedReceiver<async_nats::Client> {
        let (clients_tx, clients_rx) = mpsc::unbounded_channel();
        self.clients_tx = Some(clients_tx);
        clients_rx
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            if let Some(running) = agent.running.take() {
                running.task.abort();
            }
        }
    }
}

async fn enroll_one(
    server_url: &str,
    token: &str,
    root: &Path,
    prefix: &str,
    idx: usize,
) -> anyhow::Result<SimAgent> {
    let name = format!("{prefix}-{:05}", idx + 1);
    let agent_id =
        AgentId::parse(&name).map_err(|err| anyhow::anyhow!("agent id {name}: {err}"))?;
    let state_dir = root.join(&name);
    let options = EnrollOptions {
        requested_id: Some(agent_id.clone()),
        hostname: Some(format!("{name}.bench")),
        ..EnrollOptions::default()
    };
    let identity = tutti_agent::enroll::enroll(server_url, token, &state_dir, options)
        .await
        .with_context(|| format!("enroll simulated agent {name}"))?;
    Ok(SimAgent {
        agent_id: identity.agent_id,
        state_dir,
        running: None,
    })
}

/// When each agent's heartbeat was last seen, from a subscription to every heartbeat.
#[derive(Debug)]
pub(crate) struct HeartbeatWatch {
    last_seen: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HeartbeatWatch {
    /// Subscribes (and flushes, so the broker knows) before returning.
    pub(crate) async fn subscribe(client: &async_nats::Client) -> anyhow::Result<HeartbeatWatch> {
        let mut subscription = client
            .subscribe(subjects::all_heartbeats())
            .await
            .context("subscribe to heartbeats")?;
        client
            .flush()
            .await
            .context("flush the heartbeat subscription")?;
        let last_seen = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::clone(&last_seen);
        let task = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                // `tutti.agent.<id>.heartbeat`
                let Some(agent_id) = message.subject.split('.').nth(2) else {
                    continue;
                };
                if let Ok(mut seen) = seen.lock() {
                    seen.insert(agent_id.to_string(), Instant::now());
                }
            }
        });
        Ok(HeartbeatWatch { last_seen, task })
    }

    /// How many of `agent_ids` have heartbeated at or after `since`.
    pub(crate) fn count_since(&self, agent_ids: &[AgentId], since: Instant) -> usize {
        let Ok(seen) = self.last_seen.lock() else {
            return 0;
        };
        agent_ids
            .iter()
            .filter(|id| seen.get(id.as_str()).is_some_and(|at| *at >= since))
            .count()
    }

    /// Waits until every one of `agent_ids` has heartbeated at or after `since`.
    pub(crate) async fn wait_all(
        &self,
        agent_ids: &[AgentId],
        since: Instant,
        timeout: Duration,
        progress: &Progress,
    ) -> anyhow::Result<Duration> {
        let bar = progress.bar(agent_ids.len(), "waiting for heartbeats");
        let deadline = Instant::now() + timeout;
        loop {
            let n_seen = self.count_since(agent_ids, since);
            bar.set_position(n_seen as u64);
            if n_seen == agent_ids.len() {
                bar.finish_and_clear();
                return Ok(since.elapsed());
            }
            if Instant::now() > deadline {
                bar.finish_and_clear();
                bail!(
                    "only {n_seen} of {} agents heartbeated within {timeout:?}",
                    agent_ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HeartbeatWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A generous readiness timeout for `n_agents` agents on a small machine.
pub(crate) fn startup_timeout(n_agents: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(40 * n_agents as u64)
}

/// Subscribes each of the next `n_clients` agent connections from `clients` to
/// [`BASELINE_SUBJECT`], replying to every request; the subscriptions are flushed (known to
/// the broker) when this returns. Aborting the returned set ends them.
pub(crate) async fn spawn_baseline_responders(
    clients: &mut mpsc::UnboundedReceiver<async_nats::Client>,
    n_clients: usize,
) -> anyhow::Result<tokio::task::JoinSet<()>> {
    let mut responders = tokio::task::JoinSet::new();
    for _ in 0..n_clients {
        let client = clients
            .recv()
            .await
            .context("fewer agent clients than agents")?;
        let mut subscription = client
            .subscribe(BASELINE_SUBJECT)
            .await
            .context("subscribe an agent connection to the baseline subject")?;
        client
            .flush()
            .await
            .context("flush a baseline subscription")?;
        responders.spawn(async move {
            while let Some(message) = subscription.next().await {
                if let Some(reply) = message.reply {
                    let _ = client.publish(reply, "ok".into()).await;
                }
            }
        });
    }
    Ok(responders)
}

/// `tutti bench sim-agents`: runs simulated agents in this (child) process, prints `ready`
/// once all are started (and, when asked, answer the fanout baseline), and stops them when
/// standard input closes (the parent holds it open).
pub(crate) async fn serve_child(args: SimAgentsArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let mut fleet = SimFleet::enroll(
        &args.server,
        &args.token,
        &args.dir,
        &args.prefix,
        args.agents,
        &progress,
    )
    .await?;
    let mut clients = args.baseline_responders.then(|| fleet.tap_clients());
    fleet.start_all(args.start_rate).await;
    let mut responders = None;
    if let Some(clients) = &mut clients {
        responders = Some(spawn_baseline_responders(clients, args.agents).await?);
    }
    println!("ready");
    let mut stdin = tokio::io::stdin();
    let mut sink = tokio::io::sink();
    let _ = tokio::io::copy(&mut stdin, &mut sink).await;
    if let Some(mut responders) = responders {
        responders.abort_all();
    }
    drop(clients);
    fleet.stop_all().await;
    progress.finish();
    Ok(())
}
