//! `tutti bench fanout`: one run to all N agents.
//!
//! Measured: per-target latency from the moment the run is POSTed to the moment its result
//! is committed in SQLite (p50, p95, p99, max), and the time until all are committed. A
//! warm-up run goes first and is not measured, so every agent has synced its fleet state
//! and the projectors have their consumers. Baseline, in the same process afterwards: a
//! core NATS request published once to a subject that every agent's own connection
//! subscribes to, each replying, until all N replies arrived (median of three rounds).
//! Fleets larger than one process's share run in child processes (`shards.rs`); there the
//! children subscribe their agents' connections.
//!
//! The CPU time of the measured run is split by process (`cpu_s_broker`, `cpu_s_server`,
//! `cpu_s_agents`): on one machine, simulated agents compete with the broker and the server
//! for the same cores, while in a real fleet each agent has its own. When the agents run
//! in this process (up to 2,000), `cpu_s_server` includes them and `cpu_s_agents` is 0.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tutti_proto::RunId;

use super::committed::CommitWatch;
use super::procstat::{ProcSample, cpu_seconds, sample_all, total_cpu_seconds};
use super::report::{Progress, Report, millis, percentile, round3};
use super::rig::{BrokerAuthMode, Rig};
use super::sim::BASELINE_SUBJECT;
use super::{LaunchedFleet, launch_fleet, run_body};
use crate::Env;
use crate::args::FanoutArgs;

/// Rounds of the baseline; the median is reported.
const BASELINE_ROUNDS: usize = 3;

/// Runs the scenario.
pub(crate) async fn run(args: FanoutArgs, env: &Env) -> anyhow::Result<Report> {
    let progress = Progress::new();
    let rig = Rig::start(&args.common, env, &progress, BrokerAuthMode::Open).await?;
    let outcome = measure(&rig, &args, &progress).await;
    progress.say("stopping");
    let report = match outcome {
        Ok((report, mut launched)) => {
            launched.stop_all().await;
            report
        }
        Err(err) => {
            rig.shutdown().await;
            return Err(err);
        }
    };
    rig.shutdown().await;
    progress.finish();
    Ok(report)
}

async fn measure(
    rig: &Rig,
    args: &FanoutArgs,
    progress: &Progress,
) -> anyhow::Result<(Report, LaunchedFleet)> {
    let n_agents = args.agents;
    let launched = launch_fleet(rig, n_agents, "sim", true, progress).await?;
    let timeout = completion_timeout(n_agents);
    let body = run_body(args.exec, serde_json::json!({ "all": true }));

    progress.say("warm-up run");
    let warmup = timed_run(rig, &body, n_agents, timeout, progress).await?;
    progress.say("measured run");
    let cpu_before = CpuSplit::sample(rig, &launched)?;
    let mut latencies = timed_run(rig, &body, n_agents, timeout, progress).await?;
    let cpu = CpuSplit::sample(rig, &launched)?.since(&cpu_before);
    latencies.sort_by(f64::total_cmp);

    progress.say("raw NATS baseline");
    let baseline = baseline(rig, n_agents, timeout).await?;

    let all_done = latencies.last().copied().unwrap_or(0.0);
    let mut report = Report::new("fanout", n_agents);
    report.metric("p50_ms", percentile(&latencies, 50.0));
    report.metric("p95_ms", percentile(&latencies, 95.0));
    report.metric("p99_ms", percentile(&latencies, 99.0));
    report.metric("max_ms", all_done);
    report.metric("all_done_ms", all_done);
    report.metric("completed", latencies.len());
    report.metric("exec", format!("{:?}", args.exec).to_lowercase());
    report.metric("warmup_all_done_ms", warmup.last().copied().unwrap_or(0.0));
    report.metric("fleet_start_ms", millis(launched.startup));
    report.metric("cpu_s_broker", round3(cpu.broker));
    report.metric("cpu_s_server", round3(cpu.server));
    report.metric("cpu_s_agents", round3(cpu.agents));
    report.baseline("all_done_ms", baseline);
    report.baseline("completed", n_agents);
    report.ratio = (baseline > 0.0).then(|| all_done / baseline);
    Ok((report, launched))
}

/// Creates a run to all agents and returns each target's commit latency in milliseconds.
async fn timed_run(
    rig: &Rig,
    body: &serde_json::Value,
    n_agents: usize,
    timeout: Duration,
    progress: &Progress,
) -> anyhow::Result<Vec<f64>> {
    let mut watch = CommitWatch::open(rig.app()?, &rig.database_path())?;
    let started = Instant::now();
    let created = rig.post("/api/v1/runs", body).await?;
    let run_id: RunId = serde_json::from_value(created["run_id"].clone())
        .with_context(|| format!("the created run has no run id: {created}"))?;
    let bar = progress.bar(n_agents, "committed");
    let latencies = watch
        .run_targets(run_id, n_agents, started, timeout, &bar)
        .await;
    bar.finish_and_clear();
    Ok(latencies?.iter().map(|latency| millis(*latency)).collect())
}

/// Times [`BASELINE_ROUNDS`] fanned-out requests to the agents' connections (which
/// answer through their baseline responders); returns the median in milliseconds.
async fn baseline(rig: &Rig, n_agents: usize, timeout: Duration) -> anyhow::Result<f64> {
    let requester = rig.nats_client().await?;
    let mut rounds = Vec::with_capacity(BASELINE_ROUNDS);
    for _ in 0..BASELINE_ROUNDS {
        rounds.push(baseline_round(&requester, n_agents, timeout).await?);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[rounds.len() / 2])
}

async fn baseline_round(
    requester: &async_nats::Client,
    n_agents: usize,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let inbox = requester.new_inbox();
    let mut replies = requester.subscribe(inbox.clone()).await?;
    requester.flush().await?;
    let started = Instant::now();
    requester
        .publish_with_reply(BASELINE_SUBJECT, inbox, "ping".into())
        .await?;
    requester.flush().await?;
    let mut n_replies = 0;
    while n_replies < n_agents {
        match tokio::time::timeout_at((started + timeout).into(), replies.next()).await {
            Ok(Some(_)) => n_replies += 1,
            Ok(None) | Err(_) => bail!(
                "the raw NATS baseline got {n_replies} of {n_agents} replies within {timeout:?}"
            ),
        }
    }
    Ok(millis(started.elapsed()))
}

/// CPU seconds used by the broker, this process (the server) and the agents' processes.
struct CpuSplit {
    broker: f64,
    server: f64,
    agents: f64,
}

/// Raw samples behind a [`CpuSplit`].
struct CpuSamples {
    broker: ProcSample,
    server: ProcSample,
    agents: Vec<ProcSample>,
}

impl CpuSplit {
    fn sample(rig: &Rig, launched: &LaunchedFleet) -> anyhow::Result<CpuSamples> {
        let broker = rig.broker.pid().context("the broker is not running")?;
        Ok(CpuSamples {
            broker: ProcSample::read(&broker.to_string())?,
            server: ProcSample::read("self")?,
            agents: sample_all(&launched.fleet.child_pids())?,
        })
    }
}

impl CpuSamples {
    fn since(&self, before: &CpuSamples) -> CpuSplit {
        CpuSplit {
            broker: cpu_seconds(&before.broker, &self.broker),
            server: cpu_seconds(&before.server, &self.server),
            agents: total_cpu_seconds(&before.agents, &self.agents),
        }
    }
}

/// How long a run to `n_agents` may take before the scenario gives up.
fn completion_timeout(n_agents: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(30 * n_agents as u64)
}
