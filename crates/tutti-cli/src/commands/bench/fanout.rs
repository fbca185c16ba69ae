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

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tutti_proto::RunId;

use super::committed::CommitWatch;
use super::report::{Progress, Report, millis, percentile};
use super::rig::Rig;
use super::sim::BASELINE_SUBJECT;
use super::{LaunchedFleet, launch_fleet, run_body};
use crate::Env;
use crate::args::FanoutArgs;

/// Rounds of the baseline; the median is reported.
const BASELINE_ROUNDS: usize = 3;

/// Runs the scenario.
pub(crate) async fn run(args: FanoutArgs, env: &Env) -> anyhow::Result<Report> {
    let progress = Progress::new();
    let rig = Rig::start(&args.common, env, &progress).await?;
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
    let mut latencies = timed_run(rig, &body, n_agents, timeout, progress).await?;
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

/// How long a run to `n_agents` may take before the scenario gives up.
fn completion_timeout(n_agents: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(30 * n_agents as u64)
}
