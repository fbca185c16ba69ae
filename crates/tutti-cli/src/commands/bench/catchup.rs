//! `tutti bench catchup`: one agent is offline while K commands are sent to it; timed from
//! its restart until all K are executed and their results committed in SQLite.
//!
//! The agent has run one warm-up command before it stops, so it comes back with its cursor
//! and fleet-state replicas in place, as a laptop waking from sleep does. The K runs are
//! created through the HTTP API, each targeting that agent, while it is stopped (not timed).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tutti_proto::RunId;

use super::committed::CommitWatch;
use super::report::{Progress, Report, millis};
use super::rig::{BrokerAuthMode, Rig};
use super::{LaunchedFleet, launch_fleet, run_body, tear_down};
use crate::Env;
use crate::args::CatchupArgs;

/// Runs created at once while the agent is offline.
const CREATE_CONCURRENCY: usize = 8;

/// Runs the scenario.
pub(crate) async fn run(args: CatchupArgs, env: &Env) -> anyhow::Result<Report> {
    if args.agents == 0 || args.commands == 0 {
        bail!("--agents and --commands must be at least 1");
    }
    let progress = Progress::new();
    let rig = Rig::start(&args.common, env, &progress, BrokerAuthMode::Operator).await?;
    let mut launched = None;
    let outcome = measure(&rig, &args, &progress, &mut launched).await;
    tear_down(rig, launched, &progress).await;
    outcome
}

async fn measure(
    rig: &Rig,
    args: &CatchupArgs,
    progress: &Progress,
    launched: &mut Option<LaunchedFleet>,
) -> anyhow::Result<Report> {
    let fleet = launched
        .insert(launch_fleet(rig, args.agents, "sim", false, progress).await?)
        .fleet
        .in_process()?;
    let agent_id = fleet.agent_ids().first().cloned().context("no agent")?;
    let body = run_body(args.exec, serde_json::json!({ "agents": [agent_id] }));
    let timeout = Duration::from_secs(60) + Duration::from_millis(50 * args.commands as u64);

    progress.say("warm-up command");
    let mut watch = CommitWatch::open(rig.app()?, &rig.database_path())?;
    let warmup = create_run(rig, &body).await?;
    let bar = progress.bar(1, "warm-up");
    watch
        .run_targets(warmup, 1, Instant::now(), timeout, &bar)
        .await?;
    bar.finish_and_clear();

    progress.say(format!("stopping {agent_id}"));
    fleet.stop(0).await?;
    let bar = progress.bar(args.commands, "sending while offline");
    let sent = Instant::now();
    let created = futures::stream::iter(0..args.commands)
        .map(|_| {
            let bar = bar.clone();
            let body = &body;
            async move {
                let created = create_run(rig, body).await;
                bar.inc(1);
                created
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    bar.finish_and_clear();
    created.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let send_time = sent.elapsed();

    progress.say(format!("{agent_id} catches up"));
    let started = Instant::now();
    fleet.start(0);
    let bar = progress.bar(args.commands + 1, "committed");
    let total = u64::try_from(args.commands + 1)?;
    let all_done = watch
        .agent_targets(&agent_id, total, started, timeout, &bar)
        .await;
    bar.finish_and_clear();
    let all_done = all_done?;

    let mut report = Report::new("catchup", args.agents);
    report.metric("all_done_ms", millis(all_done));
    report.metric("commands", args.commands);
    report.metric("completed", args.commands);
    report.metric(
        "commands_per_s",
        super::report::round3(args.commands as f64 / all_done.as_secs_f64()),
    );
    report.metric("exec", format!("{:?}", args.exec).to_lowercase());
    report.metric("send_ms", millis(send_time));
    Ok(report)
}

async fn create_run(rig: &Rig, body: &serde_json::Value) -> anyhow::Result<RunId> {
    let created = rig.post("/api/v1/runs", body).await?;
    serde_json::from_value(created["run_id"].clone())
        .with_context(|| format!("the created run has no run id: {created}"))
}
