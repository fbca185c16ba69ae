//! `tutti bench`: benchmarks of the whole system on one machine, each against a baseline
//! measured in the same run where one exists.
//!
//! Every scenario builds its own [`rig::Rig`] (the pinned `nats-server` as a child process,
//! the real server in this process with SQLite in a temporary directory), starts what it
//! needs (simulated agents from `sim.rs`, or real `tutti-agent` processes for
//! `footprint.rs`), measures, and tears everything down. One file per scenario;
//! `committed.rs` observes commits in the database, `report.rs` prints the outcome, and
//! `limits.rs` raises the open-files limit. BENCHMARKS.md at the workspace root explains the
//! figures and records them.

mod broker;
mod catchup;
mod committed;
mod fanout;
mod footprint;
mod ingest;
mod limits;
mod procstat;
mod reconnect;
mod report;
mod rig;
mod shards;
mod sim;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tutti_proto::AgentId;
use tutti_proto::catalog::COMMANDS_STREAM;

use crate::Env;
use crate::args::{BenchArgs, BenchScenario, ExecMode};
use crate::client::CliError;
use report::Progress;
use rig::Rig;
use shards::{AGENTS_PER_PROCESS, ChildFleet, ShardPlan};
use sim::{HeartbeatWatch, SimFleet};

/// Runs one scenario and prints its report.
pub(crate) async fn bench(args: BenchArgs, env: &Env, json: bool) -> Result<(), CliError> {
    if let BenchScenario::SimAgents(args) = args.scenario {
        limits::raise_open_files(args.agents)?;
        if let Some(path) = std::env::var_os(CHILD_LOG_ENV) {
            init_logging(Path::new(&path))?;
        }
        return Ok(sim::serve_child(args).await?);
    }
    let (n_files, log) = match &args.scenario {
        BenchScenario::Fanout(args) => (args.agents, &args.common.log),
        BenchScenario::Ingest(args) => (0, &args.common.log),
        BenchScenario::Catchup(args) => (args.agents, &args.common.log),
        BenchScenario::Reconnect(args) => (args.agents, &args.common.log),
        BenchScenario::Footprint(args) => (args.agents + args.sim_agents, &args.common.log),
        BenchScenario::SimAgents(_) => (0, &None),
    };
    eprintln!("tutti bench: {}", limits::raise_open_files(n_files)?);
    if let Some(path) = log {
        init_logging(path)?;
        let _ = CHILD_LOG.set(path.clone());
    }
    let report = match args.scenario {
        BenchScenario::Fanout(args) => Box::pin(fanout::run(args, env)).await?,
        BenchScenario::Ingest(args) => Box::pin(ingest::run(args, env)).await?,
        BenchScenario::Catchup(args) => Box::pin(catchup::run(args, env)).await?,
        BenchScenario::Reconnect(args) => Box::pin(reconnect::run(args, env)).await?,
        BenchScenario::Footprint(args) => Box::pin(footprint::run(args, env)).await?,
        BenchScenario::SimAgents(_) => return Ok(()),
    };
    report.print(json);
    Ok(())
}

/// Simulated agents in this process, or in child processes when there are more than one
/// process can hold.
#[derive(Debug)]
pub(crate) enum Fleet {
    InProcess(SimFleet),
    Children(ChildFleet),
}

impl Fleet {
    /// The processes agents run in other than this one (empty for an in-process fleet).
    pub(crate) fn child_pids(&self) -> Vec<u32> {
        match self {
            Fleet::InProcess(_) => Vec::new(),
            Fleet::Children(children) => children.pids(),
        }
    }

    /// Every agent id, in order.
    pub(crate) fn agent_ids(&self) -> Vec<AgentId> {
        match self {
            Fleet::InProcess(fleet) => fleet.agent_ids(),
            Fleet::Children(fleet) => fleet.agent_ids(),
        }
    }

    /// The in-process fleet, for scenarios that stop and start single agents.
    pub(crate) fn in_process(&mut self) -> anyhow::Result<&mut SimFleet> {
        match self {
            Fleet::InProcess(fleet) => Ok(fleet),
            Fleet::Children(_) => anyhow::bail!(
                "this scenario runs at most {AGENTS_PER_PROCESS} agents (in one process)"
            ),
        }
    }

    /// Stops every agent.
    pub(crate) async fn stop_all(&mut self) {
        match self {
            Fleet::InProcess(fleet) => fleet.stop_all().await,
            Fleet::Children(fleet) => fleet.stop_all().await,
        }
    }
}

/// A started simulated fleet and what scenarios need next to it.
#[derive(Debug)]
pub(crate) struct LaunchedFleet {
    pub(crate) fleet: Fleet,
    pub(crate) heartbeats: HeartbeatWatch,
    /// In-process responders of the fanout baseline, when asked for.
    responders: Option<tokio::task::JoinSet<()>>,
    /// From starting the agents to all heartbeating with their command consumers open.
    pub(crate) startup: Duration,
}

impl LaunchedFleet {
    /// Stops the baseline responders and every agent.
    pub(crate) async fn stop_all(&mut self) {
        if let Some(responders) = &mut self.responders {
            responders.abort_all();
        }
        self.fleet.stop_all().await;
    }
}

/// Stops the agents (if they were launched), then the server and the broker.
pub(crate) async fn tear_down(rig: Rig, launched: Option<LaunchedFleet>, progress: &Progress) {
    progress.say("stopping");
    if let Some(mut launched) = launched {
        launched.stop_all().await;
    }
    rig.shutdown().await;
    progress.finish();
}

/// Enrolls and starts `n_agents` simulated agents (with responders on their connections
/// for the fanout baseline when `baseline_responders`), and waits until each has
/// heartbeated and holds its command consumer.
pub(crate) async fn launch_fleet(
    rig: &Rig,
    n_agents: usize,
    prefix: &str,
    baseline_responders: bool,
    progress: &Progress,
) -> anyhow::Result<LaunchedFleet> {
    let token = rig.enrollment_token(n_agents).await?;
    let root = rig.dir().join("agents");
    let url = rig.server()?.url();
    let client = rig.nats_client().await?;
    let heartbeats = HeartbeatWatch::subscribe(&client).await?;
    let started;
    let mut responders = None;
    let fleet = if n_agents <= AGENTS_PER_PROCESS {
        let mut fleet = SimFleet::enroll(&url, &token, &root, prefix, n_agents, progress).await?;
        let mut clients = baseline_responders.then(|| fleet.tap_clients());
        progress.say(format!("starting {n_agents} agents"));
        started = Instant::now();
        fleet.start_all(sim::START_RATE).await;
        if let Some(clients) = &mut clients {
            responders = Some(sim::spawn_baseline_responders(clients, n_agents).await?);
        }
        Fleet::InProcess(fleet)
    } else {
        progress.say(format!(
            "starting {n_agents} agents in processes of {AGENTS_PER_PROCESS}"
        ));
        started = Instant::now();
        let plan = ShardPlan {
            server_url: &url,
            token: &token,
            root: &root,
            prefix,
            n_agents,
            baseline_responders,
        };
        Fleet::Children(ChildFleet::start(plan).await?)
    };
    let timeout = sim::startup_timeout(n_agents);
    heartbeats
        .wait_all(&fleet.agent_ids(), started, timeout, progress)
        .await?;
    wait_for_consumers(&client, n_agents, timeout, progress).await?;
    Ok(LaunchedFleet {
        fleet,
        heartbeats,
        responders,
        startup: started.elapsed(),
    })
}

/// Waits until the commands stream has at least `n_consumers` consumers (one per agent).
async fn wait_for_consumers(
    client: &async_nats::Client,
    n_consumers: usize,
    timeout: Duration,
    progress: &Progress,
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(client.clone());
    let bar = progress.bar(n_consumers, "command consumers");
    let deadline = Instant::now() + timeout;
    let mut n_open = 0;
    loop {
        // A broker busy with thousands of new consumers may time a request out: try again.
        if let Ok(stream) = js.get_stream_no_info(COMMANDS_STREAM).await
            && let Ok(info) = stream.get_info().await
        {
            n_open = info.state.consumer_count;
        }
        bar.set_position(n_open as u64);
        if n_open >= n_consumers {
            bar.finish_and_clear();
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "only {n_open} of {n_consumers} agents opened their command consumer within {timeout:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The body of `POST /api/v1/runs` for the benchmark's command on `targets`.
pub(crate) fn run_body(exec: ExecMode, targets: serde_json::Value) -> serde_json::Value {
    let script = match exec {
        ExecMode::Builtin => serde_json::json!({ "shell": "builtin", "script": "noop" }),
        ExecMode::Process => serde_json::json!({ "shell": "sh", "script": "true" }),
    };
    serde_json::json!({ "script": script, "targets": targets })
}

/// The environment variable that hands `--log` to child processes of simulated agents,
/// which then log their warnings to the same file.
pub(crate) const CHILD_LOG_ENV: &str = "TUTTI_BENCH_LOG";
/// `--log`, for the child processes ([`CHILD_LOG_ENV`]).
pub(crate) static CHILD_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Warnings of every component go to `path`; the terminal stays for the report.
fn init_logging(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}
