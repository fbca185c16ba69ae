//! The scheduler loop: on the server that holds the leader lease (`lease.rs`), once a
//! tick, every enabled cron schedule's due fires are claimed in the store and turned into
//! runs, and every enabled desired-state schedule is reconciled (`desired.rs`: one run for
//! the agents out of their desired state).
//!
//! A fire is claimed before its run is created, keyed by (schedule, fire time): a fire is
//! acted on at most once, by whichever server claims it, even across a takeover in the
//! middle of a tick. A server that dies between the claim and the run leaves the fire
//! claimed without a run (visible in the schedule's fires); firing twice would be worse.
//! During a fleet freeze a due fire is recorded as skipped (`frozen`), never delayed.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tutti_proto::audit::AuditOutcome;
use tutti_store::{Page, Schedule};

use super::desired;
use super::plan::{self, Due};
use super::spec::{ScheduleSpec, Trigger};
use crate::actor::Actor;
use crate::api::schedules::parse_stored;
use crate::app::App;
use crate::engine::rollout::{RolloutSpec, WaveSize};
use crate::engine::{self, Origin, RunRequest};
use crate::error::Result;

/// Schedules read per page when listing the enabled ones.
const PAGE: u32 = 500;

/// Ticks every `every` while `leader` says this server leads, until `shutdown` changes.
pub async fn run(
    app: App,
    every: Duration,
    leader: watch::Receiver<Option<u64>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if leader.borrow().is_none() {
            continue;
        }
        if let Err(err) = tick(&app, Timestamp::now()).await {
            tracing::warn!(error = %err, "A scheduler tick failed; the next tick retries.");
        }
    }
}

/// One pass over every enabled schedule as if the time were `now`. Public so tests can
/// drive the scheduler with a clock of their own.
pub async fn tick(app: &App, now: Timestamp) -> Result<()> {
    for schedule in enabled_schedules(app).await? {
        let spec = match parse_stored(&schedule) {
            Ok(spec) => spec,
            Err(err) => {
                tracing::error!(schedule = %schedule.name, error = %err, "A stored schedule does not parse; it is not fired.");
                continue;
            }
        };
        match spec.trigger {
            Trigger::Cron(_) => fire_due(app, &schedule, &spec, now).await?,
            Trigger::DesiredState(_) => reconcile(app, &schedule, &spec, now).await,
        }
    }
    Ok(())
}

/// Reconciles one desired-state schedule. A failure is logged and does not stop the tick,
/// so one broken schedule cannot hold back the others; the next tick tries again.
async fn reconcile(app: &App, schedule: &Schedule, spec: &ScheduleSpec, now: Timestamp) {
    if let Err(err) = desired::reconcile(app, schedule, spec, now).await {
        tracing::warn!(schedule = %schedule.name, error = %err, "A desired-state schedule could not be reconciled; the next tick retries.");
    }
}

async fn enabled_schedules(app: &App) -> Result<Vec<Schedule>> {
    let mut schedules = Vec::new();
    loop {
        let page = Page::new(PAGE, schedules.len() as u64);
        let found = app.store.list_schedules(true, page).await?;
        let n_found = found.items.len();
        schedules.extend(found.items);
        if n_found < PAGE as usize {
            return Ok(schedules);
        }
    }
}

async fn fire_due(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    now: Timestamp,
) -> Result<()> {
    let last = app
        .store
        .list_schedule_fires(&schedule.name, Page::new(1, 0))
        .await?
        .items
        .first()
        .map(|fire| fire.fire_at);
    let since = last.map_or(schedule.updated_at, |last| last.max(schedule.updated_at));
    for due in plan::due_fires(&schedule.name, spec, since, now) {
        let fire_at = match due {
            Due::Run(at) | Due::Missed(at) => at,
        };
        if !app
            .store
            .claim_schedule_fire(&schedule.name, fire_at, now)
            .await?
        {
            continue;
        }
        match due {
            Due::Missed(_) => skip(app, schedule, fire_at, "missed").await?,
            Due::Run(_) => fire(app, schedule, spec, fire_at, now).await?,
        }
    }
    Ok(())
}

async fn fire(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    fire_at: Timestamp,
    now: Timestamp,
) -> Result<()> {
    let freeze = app.kv.get_freeze().await?;
    if freeze.is_some_and(|freeze| freeze.in_force(now)) {
        return skip(app, schedule, fire_at, "frozen").await;
    }
    let deadline = spec.deadline_secs.map(|secs| {
        let secs = SignedDuration::from_secs(i64::try_from(secs.get()).unwrap_or(i64::MAX));
        now.checked_add(secs).unwrap_or(Timestamp::MAX)
    });
    let request = RunRequest {
        job_id: Some(spec.job.clone()),
        script: None,
        targets: spec.targets.clone(),
        deadline,
        rollout: rollout_of(spec),
    };
    let origin = Origin {
        schedule_name: Some(schedule.name.clone()),
        job_version: spec.job_version.map(|version| version.get()),
    };
    let actor = Actor::system(&format!("schedule:{}", schedule.name));
    let target = format!("schedule/{}", schedule.name);
    match engine::create_run_from(app, request, &actor, origin).await {
        Ok(created) => {
            let run_id = created.run_id.to_string();
            app.store
                .settle_schedule_fire(&schedule.name, fire_at, Some(run_id.clone()), None)
                .await?;
            let summary = serde_json::json!({ "fire_at": fire_at, "run_id": run_id, "n_targets": created.n_targets });
            app.auditor
                .succeeded(&actor, "schedule.fire", target, summary)
                .await;
            tracing::info!(schedule = %schedule.name, %fire_at, run_id, "A schedule fired.");
        }
        Err(err) => {
            let reason = format!("error: {err}");
            app.store
                .settle_schedule_fire(&schedule.name, fire_at, None, Some(reason.clone()))
                .await?;
            let summary = serde_json::json!({ "fire_at": fire_at, "error": err.to_string() });
            app.auditor
                .record(
                    &actor,
                    "schedule.fire",
                    target,
                    summary,
                    AuditOutcome::Failed,
                )
                .await;
            tracing::warn!(schedule = %schedule.name, %fire_at, error = %err, "A schedule could not fire.");
        }
    }
    Ok(())
}

/// A fired run's rollout: the schedule's own, capped at `max_concurrent_targets`; or, for a
/// cap alone, one wave of everyone released `max_concurrent_targets` at a time, where
/// failures never abort (a cap is not a safety threshold).
fn rollout_of(spec: &ScheduleSpec) -> Option<RolloutSpec> {
    let cap = spec.max_concurrent_targets.map(|cap| cap.get());
    match (&spec.rollout, cap) {
        (Some(rollout), cap) => Some(RolloutSpec {
            batch_size: rollout.batch_size.or(cap),
            ..rollout.clone()
        }),
        (None, Some(cap)) => Some(RolloutSpec {
            waves: vec![WaveSize::Percent(100.0)],
            wait_secs: 0,
            max_failure_ratio: Some(1.0),
            max_failures: None,
            batch_size: Some(cap),
        }),
        (None, None) => None,
    }
}

async fn skip(app: &App, schedule: &Schedule, fire_at: Timestamp, reason: &str) -> Result<()> {
    app.store
        .settle_schedule_fire(&schedule.name, fire_at, None, Some(reason.to_string()))
        .await?;
    tracing::info!(schedule = %schedule.name, %fire_at, reason, "A schedule fire was skipped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::parse_yaml;

    fn spec(extra: &str) -> Result<ScheduleSpec, String> {
        let text = format!("kind: Schedule\nname: s\njob: j\ntargets: {{all: true}}\n{extra}");
        parse_yaml(&text)
            .map(|mut parsed| parsed.remove(0).spec)
            .map_err(|err| err.message)
    }

    #[test]
    fn fired_runs_roll_out_as_the_schedule_says_capped_at_its_concurrency() {
        let plain = spec("cron: '0 3 * * *'").unwrap();
        assert_eq!(rollout_of(&plain), None);

        let capped = spec("cron: '0 3 * * *'\nmax_concurrent_targets: 5").unwrap();
        let rollout = rollout_of(&capped).unwrap();
        assert_eq!(
            (rollout.batch_size, rollout.max_failure_ratio),
            (Some(5), Some(1.0))
        );
        assert_eq!(rollout.waves, vec![WaveSize::Percent(100.0)]);

        let waves = "cron: '0 3 * * *'\nmax_concurrent_targets: 5\nrollout: {waves: ['10%', '100%'], wait_secs: 600, max_failure_ratio: 0.1}";
        let rollout = rollout_of(&spec(waves).unwrap()).unwrap();
        assert_eq!((rollout.batch_size, rollout.wait_secs), (Some(5), 600));
        assert_eq!(rollout.waves.len(), 2);
    }

    #[test]
    fn a_rollout_is_checked_when_the_schedule_is_applied() {
        let err = spec("cron: '0 3 * * *'\nrollout: {waves: ['50%', '10%']}").unwrap_err();
        assert!(
            err.starts_with("line 6") && err.contains("rollout"),
            "{err}"
        );
        let err = spec("desired_state: {once_per_version: true}\nrollout: {waves: ['100%']}")
            .unwrap_err();
        assert!(err.contains("rollout applies to cron schedules"), "{err}");
        let err = spec("cron: '0 3 * * *'\nrollout: {waves: ['100%'], wave: 1}").unwrap_err();
        assert!(err.contains("unknown field `wave`"), "{err}");
    }
}
