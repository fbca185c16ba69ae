//! `tutti bench footprint`: what idle costs.
//!
//! Agents: N real `tutti-agent` processes (the binary next to this one), each enrolled
//! with `tutti-agent enroll` and its own state directory, are left idle; their RSS
//! (`VmRSS`) at the end and their CPU (utime + stime) over T seconds are read from `/proc`.
//! Server: M simulated agents run in a child process (`tutti bench sim-agents`), so that
//! this process holds the server alone (plus the benchmark's bookkeeping, which is idle
//! while it measures); its own RSS and CPU are read over the same T seconds.
//! The broker's and the simulated agents' RSS and CPU over the same window are reported
//! too (`broker_*`, `sim_agent_*` per simulated agent): at ten thousand agents on one
//! machine they are what is left of it for the server.
//! Measurement starts once every agent has heartbeated, plus [`SETTLE`] for the start-up
//! work (inventory collection) to finish.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tutti_proto::AgentId;

use super::procstat::{ProcSample, cpu_percent, sample_all};
use super::report::{Progress, Report, round3};
use super::rig::{BrokerAuthMode, Rig};
use super::shards::{ChildFleet, ShardPlan, Stop, stop_children};
use super::sim::{self, HeartbeatWatch};
use crate::Env;
use crate::args::FootprintArgs;

/// Time given to start-up work before measuring.
const SETTLE: Duration = Duration::from_secs(3);

/// Runs the scenario.
pub(crate) async fn run(args: FootprintArgs, env: &Env) -> anyhow::Result<Report> {
    if args.agents == 0 || args.seconds == 0 {
        bail!("--agents and --seconds must be at least 1");
    }
    let agent_binary = agent_binary()?;
    let progress = Progress::new();
    let rig = Rig::start(&args.common, env, &progress, BrokerAuthMode::Operator).await?;
    let mut children = Vec::new();
    let mut sim_fleet = None;
    let outcome = measure(
        &rig,
        &args,
        &agent_binary,
        &progress,
        &mut children,
        &mut sim_fleet,
    )
    .await;
    progress.say("stopping");
    stop_children(children, Stop::Terminate).await;
    if let Some(mut sim_fleet) = sim_fleet {
        sim_fleet.stop_all().await;
    }
    rig.shutdown().await;
    progress.finish();
    outcome
}

async fn measure(
    rig: &Rig,
    args: &FootprintArgs,
    agent_binary: &Path,
    progress: &Progress,
    children: &mut Vec<Child>,
    sim_fleet: &mut Option<ChildFleet>,
) -> anyhow::Result<Report> {
    let token = rig.enrollment_token(args.agents + args.sim_agents).await?;
    let client = rig.nats_client().await?;
    let heartbeats = HeartbeatWatch::subscribe(&client).await?;
    let started = Instant::now();
    let mut sim_ids = Vec::new();
    if args.sim_agents > 0 {
        progress.say(format!("starting {} simulated agents", args.sim_agents));
        let url = rig.server()?.url();
        let plan = ShardPlan {
            server_url: &url,
            token: &token,
            root: &rig.dir().join("sim-agents"),
            prefix: "idle",
            n_agents: args.sim_agents,
            baseline_responders: false,
        };
        sim_ids = sim_fleet.insert(ChildFleet::start(plan).await?).agent_ids();
    }
    progress.say(format!("starting {} tutti-agent processes", args.agents));
    let mut agent_ids = Vec::new();
    let mut agent_pids = Vec::new();
    for idx in 0..args.agents {
        let (agent_id, child) = spawn_real_agent(rig, agent_binary, &token, idx).await?;
        agent_pids.push(child.id().context("a tutti-agent exited at once")?);
        agent_ids.push(agent_id);
        children.push(child);
    }
    let everyone: Vec<AgentId> = agent_ids.iter().chain(&sim_ids).cloned().collect();
    let timeout = sim::startup_timeout(everyone.len());
    heartbeats
        .wait_all(&everyone, started, timeout, progress)
        .await?;
    drop(heartbeats);
    drop(client);

    progress.say(format!("idle for {} s", args.seconds));
    tokio::time::sleep(SETTLE).await;
    let window = Duration::from_secs(args.seconds);
    let broker_pid = rig.broker.pid().context("the broker is not running")?;
    let sim_pids = sim_fleet.as_ref().map(ChildFleet::pids).unwrap_or_default();
    let agents_before = sample_all(&agent_pids)?;
    let server_before = ProcSample::read("self")?;
    let broker_before = ProcSample::read(&broker_pid.to_string())?;
    let sims_before = sample_all(&sim_pids)?;
    let measured_from = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = measured_from.elapsed();
    let agents_after = sample_all(&agent_pids)?;
    let server_after = ProcSample::read("self")?;
    let broker_after = ProcSample::read(&broker_pid.to_string())?;
    let sims_after = sample_all(&sim_pids)?;

    let agent_cpu: Vec<f64> = agents_before
        .iter()
        .zip(&agents_after)
        .map(|(before, after)| cpu_percent(before, after, elapsed))
        .collect();
    let agent_rss: Vec<u64> = agents_after.iter().map(|sample| sample.rss_kb).collect();
    let mut report = Report::new("footprint", args.agents);
    report.metric("agent_rss_kb", mean(agent_rss.iter().map(|&kb| kb as f64)));
    report.metric(
        "agent_rss_kb_max",
        agent_rss.iter().copied().max().unwrap_or(0),
    );
    report.metric("agent_cpu_pct", round3(mean(agent_cpu.iter().copied())));
    report.metric("server_rss_kb", server_after.rss_kb);
    report.metric(
        "server_cpu_pct",
        round3(cpu_percent(&server_before, &server_after, elapsed)),
    );
    report.metric("broker_rss_kb", broker_after.rss_kb);
    report.metric(
        "broker_cpu_pct",
        round3(cpu_percent(&broker_before, &broker_after, elapsed)),
    );
    if args.sim_agents > 0 {
        let per_agent = args.sim_agents as f64;
        let sim_cpu: f64 = sims_before
            .iter()
            .zip(&sims_after)
            .map(|(before, after)| cpu_percent(before, after, elapsed))
            .sum();
        let sim_rss: u64 = sims_after.iter().map(|sample| sample.rss_kb).sum();
        report.metric("sim_agent_cpu_pct", round3(sim_cpu / per_agent));
        report.metric("sim_agent_rss_kb", round3(sim_rss as f64 / per_agent));
    }
    report.metric("sim_agents", args.sim_agents);
    report.metric("seconds", args.seconds);
    report.metric("completed", agent_rss.len());
    Ok(report)
}

/// `tutti-agent` next to this executable.
fn agent_binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()
        .context("locate the tutti executable")?
        .with_file_name("tutti-agent");
    if !binary.is_file() {
        bail!(
            "footprint runs real agents, but {} does not exist; build it with \
             `cargo build -p tutti-agent` (add --release for a release build of tutti)",
            binary.display()
        );
    }
    Ok(binary)
}

async fn spawn_real_agent(
    rig: &Rig,
    binary: &Path,
    token: &str,
    idx: usize,
) -> anyhow::Result<(AgentId, Child)> {
    let name = format!("real-{:05}", idx + 1);
    let agent_id = AgentId::parse(&name).map_err(anyhow::Error::msg)?;
    let dir = rig.dir().join("real-agents").join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let config = dir.join("agent.toml");
    let text = format!(
        "state_dir = {:?}\nlog_level = \"warn\"\n",
        dir.join("state").display().to_string()
    );
    std::fs::write(&config, text).with_context(|| format!("write {}", config.display()))?;
    let enrolled = Command::new(binary)
        .args(["enroll", "--server"])
        .arg(rig.server()?.url())
        .args(["--token", token, "--id", &name, "--config"])
        .arg(&config)
        .output()
        .await
        .context("run tutti-agent enroll")?;
    if !enrolled.status.success() {
        bail!(
            "tutti-agent enroll failed: {}",
            String::from_utf8_lossy(&enrolled.stderr)
        );
    }
    let log = std::fs::File::create(dir.join("agent.log")).context("create an agent log")?;
    let child = Command::new(binary)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("start tutti-agent")?;
    Ok((agent_id, child))
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}
