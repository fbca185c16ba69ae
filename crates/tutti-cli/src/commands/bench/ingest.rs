//! `tutti bench ingest`: M results through the real results projector into SQLite.
//!
//! Setup (not timed): N agents are enrolled in the store, runs of N queued targets each
//! are stored until they cover M results, the server is stopped, and M results, as the N
//! agents would send them, are published into `TUTTI_RESULTS`. Timed: from the server's start until its projector has
//! committed the last one (the projector position reaches the last stream sequence), so the
//! figure covers fetching from JetStream, decoding, `apply_results` and acknowledging.
//! Baseline, in the same run: the same rows inserted with plain batched `INSERT`s of the
//! projector's batch size (`tutti_store::baseline`) into a fresh database with the same
//! schema.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;
use tutti_proto::catalog::RESULTS_STREAM;
use tutti_proto::result::RunResult;
use tutti_proto::{AgentId, CommandId, JobId, RunId, subjects};
use tutti_store::baseline::{PlainResultInserter, TargetProbe, enroll_agents, uptime_result};
use tutti_store::{JobDraft, NewRun, Sequenced, Store};

use super::report::{Progress, Report, millis, round3};
use super::rig::{BrokerAuthMode, Rig};
use crate::Env;
use crate::args::IngestArgs;

/// Publishes in flight before their acknowledgements are awaited.
const PUBLISH_WINDOW: usize = 2048;
/// How long the projector may take per result before the scenario gives up.
const TIMEOUT_PER_RESULT: Duration = Duration::from_millis(1);

/// Runs the scenario.
pub(crate) async fn run(args: IngestArgs, env: &Env) -> anyhow::Result<Report> {
    if args.agents == 0 || args.results == 0 {
        bail!("--agents and --results must be at least 1");
    }
    let progress = Progress::new();
    let mut rig = Rig::start(&args.common, env, &progress, BrokerAuthMode::Operator).await?;
    let outcome = measure(&mut rig, &args, &progress).await;
    rig.shutdown().await;
    progress.finish();
    outcome
}

async fn measure(rig: &mut Rig, args: &IngestArgs, progress: &Progress) -> anyhow::Result<Report> {
    progress.say("storing runs");
    let results = store_runs(rig, args.agents, args.results).await?;
    let batch_size = rig.app()?.config.projector.batch_size;
    rig.stop_server().await?;

    progress.say(format!("publishing {} results", results.len()));
    let last_seq = publish(rig, &results, progress).await?;
    progress.say("projecting");
    rig.start_server_again().await?;
    let started = Instant::now();
    let timeout = Duration::from_secs(60) + TIMEOUT_PER_RESULT * results.len() as u32;
    wait_for_position(rig, last_seq, started, timeout).await?;
    let projected = started.elapsed();
    let probe = TargetProbe::open(&rig.database_path())?;
    let committed = probe.result_count()?;
    rig.stop_server().await?;

    progress.say("plain SQLite baseline");
    let sequenced: Vec<Sequenced<RunResult>> = results
        .into_iter()
        .zip(1..)
        .map(|(result, seq)| Sequenced::new(seq, result))
        .collect();
    let plain = plain_insert(rig, sequenced, batch_size).await?;

    let n_results = args.results as f64;
    let ours = n_results / projected.as_secs_f64();
    let theirs = n_results / plain.as_secs_f64();
    let mut report = Report::new("ingest", args.agents);
    report.metric("rows_per_s", round3(ours));
    report.metric("results", args.results);
    report.metric("completed", committed);
    report.metric("elapsed_ms", millis(projected));
    report.metric("batch_size", batch_size);
    report.baseline("rows_per_s", round3(theirs));
    report.baseline("elapsed_ms", millis(plain));
    report.ratio = Some(ours / theirs);
    Ok(report)
}

/// Stores one job and enough runs of `n_agents` targets for `n_results` results; returns
/// the results, in the order they will be published.
async fn store_runs(
    rig: &Rig,
    n_agents: usize,
    n_results: usize,
) -> anyhow::Result<Vec<RunResult>> {
    let store = &rig.app()?.store;
    let job_id = JobId::parse("bench-ingest").map_err(anyhow::Error::msg)?;
    let draft = JobDraft {
        job_id: job_id.clone(),
        definition: serde_json::json!({ "shell": "builtin", "script": "noop" }),
        source_yaml: String::new(),
        anonymous: false,
    };
    store
        .put_job(draft, "tutti bench", Timestamp::now())
        .await?;
    let agents = (1..=n_agents)
        .map(|n| AgentId::parse(&format!("ingest-{n:05}")).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    enroll_agents(store, &agents, Timestamp::now())
        .await
        .context("enroll the agents")?;
    let mut results = Vec::with_capacity(n_results);
    let n_runs = n_results.div_ceil(n_agents);
    for run_idx in 0..n_runs {
        let run_id = RunId::new(ulid::Ulid::new());
        let n_targets = (n_results - run_idx * n_agents).min(n_agents);
        let targets = agents[..n_targets].to_vec();
        store
            .create_run(new_run(run_id, &job_id), targets.clone())
            .await
            .context("store a run")?;
        results.extend(targets.into_iter().map(|agent_id| {
            uptime_result(
                run_id,
                agent_id,
                CommandId::new(ulid::Ulid::new()),
                Timestamp::now(),
            )
        }));
    }
    Ok(results)
}

fn new_run(run_id: RunId, job_id: &JobId) -> NewRun {
    NewRun {
        run_id,
        job_id: job_id.clone(),
        job_version: 1,
        created_at: Timestamp::now(),
        created_by: "tutti bench".into(),
        targets_spec: serde_json::json!({ "all": true }),
        deadline: None,
        scheduled: false,
        schedule_name: None,
        during_freeze: false,
    }
}

/// Publishes every result on its agent's subject with acknowledgements; returns the last
/// stream sequence.
async fn publish(rig: &Rig, results: &[RunResult], progress: &Progress) -> anyhow::Result<u64> {
    let client = rig.nats_client().await?;
    let js = async_nats::jetstream::new(client);
    let bar = progress.bar(results.len(), "published");
    let mut last_seq = 0;
    for chunk in results.chunks(PUBLISH_WINDOW) {
        let mut acks = Vec::with_capacity(chunk.len());
        for result in chunk {
            let payload = serde_json::to_vec(result)?;
            let subject = subjects::agent_result(&result.agent_id);
            acks.push(js.publish(subject, payload.into()).await?);
        }
        for ack in acks {
            last_seq = last_seq.max(
                ack.await
                    .context("a result publish was not acknowledged")?
                    .sequence,
            );
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(last_seq)
}

/// Polls the results projector's committed position until it reaches `last_seq`.
async fn wait_for_position(
    rig: &Rig,
    last_seq: u64,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    let store = &rig.app()?.store;
    loop {
        let position = store.projector_position(RESULTS_STREAM).await?;
        if position >= last_seq {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("the projector reached sequence {position} of {last_seq} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The baseline: a fresh database with the store's schema, the same rows in batches.
async fn plain_insert(
    rig: &Rig,
    rows: Vec<Sequenced<RunResult>>,
    batch_size: usize,
) -> anyhow::Result<Duration> {
    let path = rig.dir().join("baseline.db");
    drop(
        Store::open_sqlite(&path)
            .await
            .context("create the baseline database")?,
    );
    tokio::task::spawn_blocking(move || {
        let mut inserter = PlainResultInserter::open(&path)?;
        let started = Instant::now();
        for batch in rows.chunks(batch_size.max(1)) {
            inserter.insert(batch)?;
        }
        anyhow::Ok(started.elapsed())
    })
    .await
    .context("the baseline task failed")?
}
