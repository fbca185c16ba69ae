//! What an operator does to a rollout (abort, pause, resume) and what the run view shows
//! of it.
//!
//! - **abort** stops releasing and skips the held targets (reason `rollout_aborted`);
//!   released targets finish (a kill stops those). It can be resumed.
//! - **pause** stops releasing and keeps held targets held (the run stays open).
//! - **resume** continues a paused rollout, or one an operator aborted: its
//!   `rollout_aborted` targets, which never had a command, are held again. A rollout
//!   aborted by the driver (failure threshold, deadline, kill) is not resumable: the
//!   evidence said stop, so carrying on is a new run.

use jiff::Timestamp;
use tutti_proto::RunId;
use tutti_store::{HeldTargets, Rollout, RolloutChange, RolloutState, TargetState};

use super::{ABORTED_REASON, Tally, failures};
use crate::actor::Actor;
use crate::app::App;
use crate::error::{Error, Result};
pub(crate) use tutti_api::rollouts::{RolloutView, WaveView};

/// The rollout of a run with its counts; `None` for a run without one.
pub(crate) async fn view(app: &App, run_id: RunId) -> Result<Option<RolloutView>> {
    let rollout = match app.store.get_rollout(&run_id).await {
        Ok(rollout) => rollout,
        Err(tutti_store::StoreError::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let counts = app.store.rollout_wave_counts(&run_id).await?;
    let tally = Tally::of(&counts);
    let waves = counts
        .iter()
        .map(|wave| WaveView {
            wave: wave.wave,
            n_targets: wave.released.total() + wave.unreleased.total(),
            held: wave.held(),
            open: wave.released.open(),
            succeeded: wave.released.get(TargetState::Succeeded),
            failed: failures(&wave.released),
            skipped: [TargetState::Skipped, TargetState::Killed]
                .into_iter()
                .map(|state| wave.released.get(state) + wave.unreleased.get(state))
                .sum(),
        })
        .collect();
    Ok(Some(RolloutView {
        rollout,
        held: tally.held.iter().sum(),
        released: tally.released,
        failures: tally.failures,
        waves,
    }))
}

/// Aborts a running, waiting or paused rollout; returns the view afterwards.
pub(crate) async fn abort(app: &App, run_id: RunId, actor: &Actor) -> Result<RolloutView> {
    let rollout = get(app, run_id).await?;
    let from = [
        RolloutState::Running,
        RolloutState::Waiting,
        RolloutState::Paused,
    ];
    let change = RolloutChange {
        reason: Some(format!("aborted by {}", actor.name)),
        resumable: true,
        held: HeldTargets::Skip(ABORTED_REASON.to_string()),
        ..super::stay(&rollout, &from, RolloutState::Aborted)
    };
    apply(app, &rollout, change, "abort").await
}

/// Pauses a running or waiting rollout.
pub(crate) async fn pause(app: &App, run_id: RunId, actor: &Actor) -> Result<RolloutView> {
    let rollout = get(app, run_id).await?;
    let change = RolloutChange {
        reason: Some(format!("paused by {}", actor.name)),
        resumable: true,
        ..super::stay(&rollout, &RolloutState::ACTIVE, RolloutState::Paused)
    };
    apply(app, &rollout, change, "pause").await
}

/// Resumes a paused rollout or one an operator aborted, and takes its next step at once.
pub(crate) async fn resume(app: &App, run_id: RunId) -> Result<RolloutView> {
    let rollout = get(app, run_id).await?;
    let run = app.store.get_run(&run_id).await?.run;
    if run.killed_at.is_some() {
        return Err(Error::Conflict(format!("run {run_id} was killed")));
    }
    if !rollout.resumable {
        return Err(Error::Conflict(format!(
            "the rollout of run {run_id} is {} and cannot be resumed{}",
            rollout.state.as_str(),
            rollout
                .reason
                .as_deref()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default()
        )));
    }
    let held = match rollout.state {
        RolloutState::Aborted => HeldTargets::Restore(ABORTED_REASON.to_string()),
        _ => HeldTargets::Keep,
    };
    let from = [RolloutState::Paused, RolloutState::Aborted];
    let change = RolloutChange {
        held,
        ..super::stay(&rollout, &from, RolloutState::Running)
    };
    apply(app, &rollout, change, "resume").await?;
    if let Err(err) = super::drive(app, run_id).await {
        tracing::warn!(run_id = %run_id, error = %err, "The first step of a resumed rollout failed; the driver retries at its next tick.");
    }
    view(app, run_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("run {run_id} has no rollout")))
}

async fn get(app: &App, run_id: RunId) -> Result<Rollout> {
    match app.store.get_rollout(&run_id).await {
        Err(tutti_store::StoreError::NotFound(_)) => {
            Err(Error::NotFound(format!("run {run_id} has no rollout")))
        }
        other => Ok(other?),
    }
}

async fn apply(
    app: &App,
    rollout: &Rollout,
    change: RolloutChange,
    verb: &str,
) -> Result<RolloutView> {
    let applied = app
        .store
        .set_rollout_state(&rollout.run_id, change, Timestamp::now())
        .await?;
    if applied.is_none() {
        return Err(Error::Conflict(format!(
            "cannot {verb} the rollout of run {}: it is {}",
            rollout.run_id,
            rollout.state.as_str()
        )));
    }
    app.notify_run_changed(rollout.run_id);
    view(app, rollout.run_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("run {} has no rollout", rollout.run_id)))
}
