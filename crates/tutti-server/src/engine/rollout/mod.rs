//! Rollouts: a run released to its targets in waves, stopped when too many fail.
//!
//! Everything a rollout knows lives in the store (the plan, its state, each target's wave,
//! which targets were released and with which command id), so this module keeps no state
//! of its own: [`run`] looks at every active rollout each tick and takes the next step
//! ([`drive`]); a restarted server, or a second replica, simply carries on from the rows.
//! Every step is a conditional store change, so two drivers never both take it.
//!
//! One step, in order:
//! - a killed run or a passed deadline ends the rollout (`aborted`);
//! - released targets without a recorded publish are published, with the command ids
//!   chosen at release (crash recovery, see `tutti_store::Store::pending_releases`);
//! - more than `max_failures` failures abort at once;
//! - `running`: held targets of the current wave are released (as many as `batch_size`
//!   allows) and published on their agents' own subjects; once the wave's released
//!   targets are all final, the failure ratio is checked over every released target, then
//!   the rollout waits `wait_secs`, moves to the next wave, or is done;
//! - `waiting`: at `next_wave_at` the next wave starts.
//!
//! What counts as a failure: `failed`, `timed_out`, `interrupted`, `missed` and `expired`.
//! Not `skipped` (the agent declined: kill, revoke, deadline) nor `killed` (an operator
//! stopped it), which are decisions, not evidence against the change being rolled out.
//! Operator actions (abort, pause, resume) and the run view are in `control.rs`.

mod control;
pub(crate) mod plan;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tutti_proto::RunId;
use tutti_proto::command::CommandBody;
use tutti_store::{
    HeldTargets, Rollout, RolloutChange, RolloutState, Run, RunCounts, TargetState, WaveCounts,
};

use crate::actor::Actor;
use crate::app::App;
use crate::engine::publish;
use crate::engine::targets::Outgoing;
use crate::error::{Error, Result};
pub(crate) use control::{RolloutView, WaveView, abort, pause, resume, view};
pub(crate) use plan::{RolloutPlan, RolloutSpec, WaveSize};

/// How often the driver looks at active rollouts: the longest a finished wave waits
/// beyond its `wait_secs`. Every tick is a few indexed reads per active rollout.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// The actor of the driver's own audit records.
const DRIVER: &str = "tutti-server";
/// The skip reason of held targets when a rollout is aborted.
pub(crate) const ABORTED_REASON: &str = "rollout_aborted";

/// Drives every active rollout every `interval` until `shutdown` changes.
pub(crate) async fn run(app: App, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => drive_all(&app).await,
            _ = shutdown.changed() => return,
        }
    }
}

async fn drive_all(app: &App) {
    let rollouts = match app.store.list_active_rollouts().await {
        Ok(rollouts) => rollouts,
        Err(err) => {
            tracing::warn!(error = %err, "Listing active rollouts failed; retrying at the next tick.");
            return;
        }
    };
    for rollout in rollouts {
        if let Err(err) = drive(app, rollout.run_id).await {
            tracing::warn!(run_id = %rollout.run_id, error = %err, "A rollout step failed; retrying at the next tick.");
        }
    }
}

/// Releases the first wave of a rollout created just now; returns the subjects published.
/// A failed publish kills the run (like any run whose publish fails) so nothing stays held.
#[tracing::instrument(name = "run", skip(app), fields(run_id = %run_id))]
pub(crate) async fn start(app: &App, run_id: RunId) -> Result<Vec<String>> {
    let started = async {
        let detail = app.store.get_run(&run_id).await?;
        let plan = read_plan(&app.store.get_rollout(&run_id).await?)?;
        app.store
            .release_targets(&run_id, plan.spec.batch_size, Timestamp::now())
            .await?;
        publish_pending(app, &detail.run).await
    };
    match started.await {
        Ok(subjects) => Ok(subjects),
        Err(err) => {
            tracing::warn!(run_id = %run_id, error = %err, "Releasing a rollout's first wave failed; killing the run so no target stays held.");
            if let Err(kill_err) = app
                .store
                .kill_run(&run_id, "server: publish failed", Timestamp::now())
                .await
            {
                tracing::error!(run_id = %run_id, error = %kill_err, "A rollout whose first release failed could not be killed.");
            }
            after_kill(app, run_id).await;
            Err(err)
        }
    }
}

/// Ends the rollout of a killed run (if it has one). The kill already skipped its held
/// targets (reason `killed`).
#[tracing::instrument(name = "run", skip(app), fields(run_id = %run_id))]
pub(crate) async fn after_kill(app: &App, run_id: RunId) {
    let Ok(rollout) = app.store.get_rollout(&run_id).await else {
        return;
    };
    let states = [
        RolloutState::Running,
        RolloutState::Waiting,
        RolloutState::Paused,
    ];
    let change = end(&rollout, &states, "the run was killed", HeldTargets::Keep);
    if let Err(err) = app
        .store
        .set_rollout_state(&run_id, change, Timestamp::now())
        .await
    {
        tracing::warn!(run_id = %run_id, error = %err, "Ending the rollout of a killed run failed; the driver ends it at its next tick.");
    }
}

/// Takes the next step of one rollout (see the module docs).
#[tracing::instrument(name = "run", skip(app), fields(run_id = %run_id))]
pub(crate) async fn drive(app: &App, run_id: RunId) -> Result<()> {
    let rollout = app.store.get_rollout(&run_id).await?;
    if !RolloutState::ACTIVE.contains(&rollout.state) {
        return Ok(());
    }
    let run = app.store.get_run(&run_id).await?.run;
    let now = Timestamp::now();
    if run.killed_at.is_some() {
        let change = end(
            &rollout,
            &RolloutState::ACTIVE,
            "the run was killed",
            HeldTargets::Keep,
        );
        app.store.set_rollout_state(&run_id, change, now).await?;
        return Ok(());
    }
    if run.deadline.is_some_and(|deadline| deadline <= now) {
        let held = HeldTargets::Skip("deadline_passed".into());
        let reason = "the run's deadline passed".to_string();
        return auto_abort(app, &rollout, reason, held).await;
    }
    publish_pending(app, &run).await?;
    let plan = read_plan(&rollout)?;
    let tally = Tally::of(&app.store.rollout_wave_counts(&run_id).await?);
    if let Some(max_failures) = plan.spec.max_failures
        && tally.failures > max_failures
    {
        let reason = format!(
            "{} released targets failed, more than the {max_failures} allowed",
            tally.failures
        );
        return auto_abort(app, &rollout, reason, aborted_held()).await;
    }
    match rollout.state {
        RolloutState::Waiting if rollout.next_wave_at.is_some_and(|at| at > now) => Ok(()),
        RolloutState::Waiting => next_wave(app, &rollout, &run, &tally, &plan).await,
        _ => step_running(app, &rollout, &run, &tally, &plan).await,
    }
}

async fn step_running(
    app: &App,
    rollout: &Rollout,
    run: &Run,
    tally: &Tally,
    plan: &RolloutPlan,
) -> Result<()> {
    let released = app
        .store
        .release_targets(&run.run_id, plan.spec.batch_size, Timestamp::now())
        .await?;
    if released > 0 {
        publish_pending(app, run).await?;
        return Ok(());
    }
    if tally.open > 0 || tally.held_up_to(rollout.current_wave) > 0 {
        return Ok(());
    }
    if let Some(ratio) = plan.spec.failure_ratio()
        && tally.released > 0
        && tally.failures as f64 / tally.released as f64 > ratio
    {
        let reason = format!(
            "{} of {} released targets failed, more than {}%",
            tally.failures,
            tally.released,
            ratio * 100.0
        );
        return auto_abort(app, rollout, reason, aborted_held()).await;
    }
    if plan.spec.wait_secs > 0 && tally.next_wave_after(rollout.current_wave).is_some() {
        let wait = SignedDuration::from_secs(i64::try_from(plan.spec.wait_secs).unwrap_or(0));
        let change = RolloutChange {
            next_wave_at: Timestamp::now().checked_add(wait).ok(),
            ..stay(rollout, &[RolloutState::Running], RolloutState::Waiting)
        };
        app.store
            .set_rollout_state(&run.run_id, change, Timestamp::now())
            .await?;
        return Ok(());
    }
    next_wave(app, rollout, run, tally, plan).await
}

/// Starts the next wave that has held targets, or finishes the rollout.
async fn next_wave(
    app: &App,
    rollout: &Rollout,
    run: &Run,
    tally: &Tally,
    plan: &RolloutPlan,
) -> Result<()> {
    let now = Timestamp::now();
    let Some(wave) = tally.next_wave_after(rollout.current_wave) else {
        let summary = serde_json::json!({ "released": tally.released, "failures": tally.failures });
        let change = end(
            rollout,
            &RolloutState::ACTIVE,
            "every wave finished",
            HeldTargets::Keep,
        );
        let change = RolloutChange {
            to: RolloutState::Done,
            ..change
        };
        if app
            .store
            .set_rollout_state(&run.run_id, change, now)
            .await?
            .is_some()
        {
            tracing::info!(run_id = %run.run_id, "A rollout finished every wave.");
            audit(app, "rollout.done", run.run_id, summary).await;
        }
        return Ok(());
    };
    let change = RolloutChange {
        to_wave: wave,
        ..stay(rollout, &RolloutState::ACTIVE, RolloutState::Running)
    };
    if app
        .store
        .set_rollout_state(&run.run_id, change, now)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let released = app
        .store
        .release_targets(&run.run_id, plan.spec.batch_size, now)
        .await?;
    tracing::info!(run_id = %run.run_id, wave, released, "A rollout started its next wave.");
    let summary = serde_json::json!({ "wave": wave, "n_released": released });
    audit(app, "rollout.wave", run.run_id, summary).await;
    publish_pending(app, run).await?;
    Ok(())
}

async fn auto_abort(app: &App, rollout: &Rollout, reason: String, held: HeldTargets) -> Result<()> {
    let change = end(rollout, &RolloutState::ACTIVE, &reason, held);
    let skipped = app
        .store
        .set_rollout_state(&rollout.run_id, change, Timestamp::now())
        .await?;
    if let Some(n_skipped) = skipped {
        tracing::warn!(run_id = %rollout.run_id, reason, n_skipped, "A rollout was aborted.");
        let summary = serde_json::json!({ "reason": reason, "n_skipped": n_skipped });
        audit(app, "rollout.auto_abort", rollout.run_id, summary).await;
        app.notify_run_changed(rollout.run_id);
    }
    Ok(())
}

/// Publishes every released target whose publish was not recorded, on its agent's own
/// subject with the command id stored at release; returns the subjects.
async fn publish_pending(app: &App, run: &Run) -> Result<Vec<String>> {
    let pending = app.store.pending_releases(&run.run_id).await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let body = command_body(app, run).await?;
    let messages: Vec<(Outgoing, tutti_proto::CommandId)> = pending
        .into_iter()
        .map(|release| {
            let outgoing = crate::engine::targets::plan_agent(&release.agent_id);
            (outgoing, release.command_id)
        })
        .collect();
    let published = publish::publish_with_ids(app, run.run_id, &messages, &body).await?;
    let subjects = published.iter().map(|p| p.subject.clone()).collect();
    for command in published {
        app.store.set_run_command_seq(command).await?;
    }
    Ok(subjects)
}

/// The run's command, rebuilt from the stored run and job version (identical for every
/// wave, so any server can publish any wave).
async fn command_body(app: &App, run: &Run) -> Result<CommandBody> {
    let version = app
        .store
        .get_job_version(&run.job_id, run.job_version)
        .await?;
    let spec: crate::manifest::JobSpec = serde_json::from_value(version.definition)
        .map_err(|err| Error::internal("stored job definition", err))?;
    let mut body = crate::engine::run_body(
        run.run_id,
        &run.job_id,
        run.job_version,
        &spec,
        run.deadline,
    );
    if let CommandBody::Run(command) = &mut body {
        command.scheduled = run.scheduled;
    }
    Ok(body)
}

fn read_plan(rollout: &Rollout) -> Result<RolloutPlan> {
    serde_json::from_value(rollout.plan.clone())
        .map_err(|err| Error::internal("stored rollout plan", err))
}

/// A change from `from` (at the current wave) to `to`, keeping wave, reason and held
/// targets.
fn stay(rollout: &Rollout, from: &[RolloutState], to: RolloutState) -> RolloutChange {
    RolloutChange {
        from: from.to_vec(),
        from_wave: rollout.current_wave,
        to,
        to_wave: rollout.current_wave,
        next_wave_at: None,
        reason: None,
        resumable: false,
        held: HeldTargets::Keep,
    }
}

/// An abort that cannot be resumed.
fn end(rollout: &Rollout, from: &[RolloutState], reason: &str, held: HeldTargets) -> RolloutChange {
    RolloutChange {
        reason: Some(reason.to_string()),
        held,
        ..stay(rollout, from, RolloutState::Aborted)
    }
}

fn aborted_held() -> HeldTargets {
    HeldTargets::Skip(ABORTED_REASON.to_string())
}

async fn audit(app: &App, action: &str, run_id: RunId, summary: serde_json::Value) {
    app.auditor
        .succeeded(
            &Actor::system(DRIVER),
            action,
            format!("run/{run_id}"),
            summary,
        )
        .await;
}

/// What the driver decides on, summed over a rollout's waves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tally {
    /// Released targets.
    released: u64,
    /// Released targets that are not final.
    open: u64,
    /// Released targets that count as failures.
    failures: u64,
    /// Held targets per wave (index 0 = wave 1).
    held: Vec<u64>,
}

impl Tally {
    fn of(waves: &[WaveCounts]) -> Tally {
        let mut tally = Tally::default();
        for wave in waves {
            tally.released += wave.released.total();
            tally.open += wave.released.open();
            tally.failures += failures(&wave.released);
            tally.held.push(wave.held());
        }
        tally
    }

    fn held_up_to(&self, wave: u32) -> u64 {
        self.held.iter().take(wave as usize).sum()
    }

    /// The first wave after `wave` that has held targets.
    fn next_wave_after(&self, wave: u32) -> Option<u32> {
        (wave as usize..self.held.len())
            .find(|index| self.held[*index] > 0)
            .map(|index| index as u32 + 1)
    }
}

/// Targets in states that count against a rollout (see the module docs).
pub(crate) fn failures(counts: &RunCounts) -> u64 {
    [
        TargetState::Failed,
        TargetState::TimedOut,
        TargetState::Interrupted,
        TargetState::Missed,
        TargetState::Expired,
    ]
    .into_iter()
    .map(|state| counts.get(state))
    .sum()
}
