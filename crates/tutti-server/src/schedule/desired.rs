//! Desired-state schedules: keep every targeted agent in a state ("has run version 4 of
//! the job once", "has run the job within the last N hours") instead of firing at times.
//!
//! Each scheduler tick calls [`reconcile`] for every enabled desired-state schedule. It
//! resolves the targets again (so agents that joined a group later are included), reads
//! the schedule's coverage from the store (`Store::schedule_coverage`), judges every agent
//! with [`judge`] and creates **one** run, on an explicit agent list, for the agents that
//! are due. The judging rules:
//!
//! - **done**: succeeded at the version (`once_per_version`; the pinned version, or the
//!   job's current one, so applying a new version re-arms every agent), or succeeded in a
//!   run created within the last N hours (`every_hours`, any version).
//! - **in flight**: has an open target (queued, delivered, running) of this schedule at
//!   this version. Offline agents are targeted like the others: the command waits in the
//!   stream and they run it when they are back. Because an open target makes an agent in
//!   flight, an agent offline for a week holds one command, never one per tick.
//! - **failed**: [`MAX_FAILED_ATTEMPTS`] failed attempts since its last success
//!   (`failed`, `timed_out`, `interrupted`, `missed`, `expired`; for `every_hours` only
//!   those of the last N hours count, so each period gets its own attempts).
//! - **waiting**: failed before and within its backoff ([`backoff`]) since the last failure.
//! - **due**: anything else.
//!
//! Nothing starts while the schedule is disabled, outside its active period, maintenance
//! window or on a skip date ([`ScheduleSpec::may_fire_at`]), while a fleet freeze is in
//! force, or while its job is revoked; and never more agents than `max_concurrent_targets`
//! minus those in flight. Reconciling every tick (1 s by default) is cheap: a KV read for
//! the freeze, the target resolution and one indexed read of the schedule's runs (only
//! the last N hours of them for `every_hours`), so there is no per-schedule rate limit.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tutti_proto::audit::AuditOutcome;
use tutti_proto::{AgentId, RunId};
use tutti_store::{AgentCoverage, CoverageQuery, Schedule, StoreError};

use super::spec::{DesiredState, ScheduleSpec, Trigger};
use crate::actor::Actor;
use crate::app::App;
use crate::engine::targets::{self, TargetSpec};
use crate::engine::{self, Origin, RunRequest};
use crate::error::{Error, Result};

/// Failed attempts after which an agent is `failed` and no longer retried (until a new
/// job version for `once_per_version`, or the next period for `every_hours`). Five gives
/// a flaky machine a fair chance without hammering a broken one.
pub const MAX_FAILED_ATTEMPTS: u32 = 5;
/// The wait before the first retry; each further failure doubles it.
pub const FIRST_BACKOFF: SignedDuration = SignedDuration::from_mins(1);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: SignedDuration = SignedDuration::from_hours(1);

/// Where one agent stands with a desired-state schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In the desired state.
    Done,
    /// Has an open target of this schedule.
    InFlight,
    /// Reached [`MAX_FAILED_ATTEMPTS`]; not retried.
    Failed,
    /// Failed before; retried at `retry_at`.
    Waiting {
        /// When the backoff ends.
        retry_at: Timestamp,
    },
    /// Should run now.
    Due,
}

/// One targeted agent, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStanding {
    /// The agent.
    pub agent_id: AgentId,
    /// How it stands.
    pub standing: Standing,
    /// What the schedule's runs did on it (`None`: never targeted).
    pub coverage: Option<AgentCoverage>,
}

/// Every targeted agent of a desired-state schedule, judged at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The job version a run started now would run.
    pub job_version: u32,
    /// The version coverage is judged at; `None` for `every_hours` (any version).
    pub judged_version: Option<u32>,
    /// Targeted agents by id.
    pub agents: Vec<AgentStanding>,
}

/// Why a reconcile started nothing without looking at the agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// The schedule is switched off.
    Disabled,
    /// Outside its active period or maintenance window, or on a skip date.
    OutsideWindow,
    /// A fleet freeze is in force.
    Frozen,
    /// Its job is revoked.
    JobRevoked,
    /// Its job was deleted.
    JobMissing,
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileOutcome {
    /// Nothing may start now.
    Held(Hold),
    /// Nobody is due, or the concurrency limit leaves no room.
    Idle,
    /// One run for the due agents.
    Started {
        /// The run.
        run_id: RunId,
        /// The job version it runs.
        job_version: u32,
        /// Its targets.
        agents: Vec<AgentId>,
        /// Due agents left for a later tick by `max_concurrent_targets`.
        n_deferred: usize,
    },
}

/// Starts one run for the agents of `schedule` that are out of their desired state (see
/// the module documentation for the rules).
pub async fn reconcile(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    now: Timestamp,
) -> Result<ReconcileOutcome> {
    if let Some(hold) = hold(app, schedule, spec, now).await? {
        return Ok(ReconcileOutcome::Held(hold));
    }
    let assessment = assess(app, &schedule.name, spec, now).await?;
    let (agents, n_deferred) = pick(&assessment, spec);
    if agents.is_empty() {
        return Ok(ReconcileOutcome::Idle);
    }
    let run_id = start(app, schedule, spec, assessment.job_version, &agents, now).await?;
    Ok(ReconcileOutcome::Started {
        run_id,
        job_version: assessment.job_version,
        agents,
        n_deferred,
    })
}

/// Judges every agent the schedule targets now. A spec that resolves to nobody (an empty
/// group) gives an empty list: a desired-state schedule may well be applied before its
/// machines enroll. A cron schedule is a bad request.
pub async fn assess(
    app: &App,
    schedule_name: &str,
    spec: &ScheduleSpec,
    now: Timestamp,
) -> Result<Assessment> {
    let Trigger::DesiredState(desired) = spec.trigger else {
        return Err(Error::bad_request(
            "coverage is for desired-state schedules",
        ));
    };
    let job_version = match spec.job_version {
        Some(version) => version.get(),
        None => app.store.get_job(&spec.job).await?.version,
    };
    let rule = Rule::of(desired, job_version, now);
    let query = CoverageQuery {
        schedule_name: schedule_name.to_string(),
        job_id: spec.job.clone(),
        job_version: rule.judged_version,
        since: rule.since,
    };
    let mut coverage: BTreeMap<AgentId, AgentCoverage> = app
        .store
        .schedule_coverage(&query)
        .await?
        .into_iter()
        .map(|coverage| (coverage.agent_id.clone(), coverage))
        .collect();
    let agents = targeted_agents(app, &spec.targets)
        .await?
        .into_iter()
        .map(|agent_id| {
            let found = coverage.remove(&agent_id);
            AgentStanding {
                standing: judge(found.as_ref(), &rule, now),
                agent_id,
                coverage: found,
            }
        })
        .collect();
    Ok(Assessment {
        job_version,
        judged_version: rule.judged_version,
        agents,
    })
}

/// What an agent must have done to be in the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Coverage is read at this version; `None` for any version.
    pub judged_version: Option<u32>,
    /// Only runs created at or after this count; `None` for all.
    pub since: Option<Timestamp>,
}

impl Rule {
    /// The rule of `desired` at `job_version`, judged at `now`.
    pub fn of(desired: DesiredState, job_version: u32, now: Timestamp) -> Rule {
        match desired {
            DesiredState::OncePerVersion => Rule {
                judged_version: Some(job_version),
                since: None,
            },
            DesiredState::EveryHours(hours) => {
                let hours = i64::try_from(hours.get()).unwrap_or(i64::MAX);
                let period = SignedDuration::from_hours(hours.min(MAX_PERIOD_HOURS));
                Rule {
                    judged_version: None,
                    since: Some(now.checked_sub(period).unwrap_or(Timestamp::MIN)),
                }
            }
        }
    }
}

/// Longer periods than this are the same as this one (about a hundred years), which
/// keeps the subtraction in range.
const MAX_PERIOD_HOURS: i64 = 24 * 365 * 100;

/// Where an agent with `coverage` (`None`: never targeted) stands under `rule` at `now`.
/// The store counts failures only within the rule's period, so one function serves both
/// kinds of desired state.
pub fn judge(coverage: Option<&AgentCoverage>, rule: &Rule, now: Timestamp) -> Standing {
    let Some(coverage) = coverage else {
        return Standing::Due;
    };
    let succeeded = coverage
        .succeeded_at
        .is_some_and(|at| rule.since.is_none_or(|since| at >= since));
    if succeeded {
        return Standing::Done;
    }
    if coverage.n_open > 0 {
        return Standing::InFlight;
    }
    if coverage.n_failed_attempts >= MAX_FAILED_ATTEMPTS {
        return Standing::Failed;
    }
    let retry_at = coverage.failed_at.and_then(|failed_at| {
        failed_at
            .checked_add(backoff(coverage.n_failed_attempts))
            .ok()
    });
    match retry_at {
        Some(retry_at) if coverage.n_failed_attempts > 0 && now < retry_at => {
            Standing::Waiting { retry_at }
        }
        _ => Standing::Due,
    }
}

/// How long an agent with `n_failed_attempts` waits after its last failure:
/// [`FIRST_BACKOFF`] × 2^(attempts − 1), at most [`MAX_BACKOFF`].
pub fn backoff(n_failed_attempts: u32) -> SignedDuration {
    let doublings = n_failed_attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .checked_mul(1 << doublings)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Why nothing may start now, if anything.
pub async fn hold(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    now: Timestamp,
) -> Result<Option<Hold>> {
    if !schedule.enabled {
        return Ok(Some(Hold::Disabled));
    }
    if !spec.may_fire_at(now) {
        return Ok(Some(Hold::OutsideWindow));
    }
    let freeze = app.kv.get_freeze().await?;
    if freeze.is_some_and(|freeze| freeze.in_force(now)) {
        return Ok(Some(Hold::Frozen));
    }
    // Checked here rather than left to the run engine, which would refuse the run on every
    // tick and fill the audit log and the log with the same failure.
    match app.store.get_job(&spec.job).await {
        Ok(job) if job.revoked_at.is_some() => Ok(Some(Hold::JobRevoked)),
        Ok(_) => Ok(None),
        Err(StoreError::NotFound(_)) => Ok(Some(Hold::JobMissing)),
        Err(err) => Err(err.into()),
    }
}

/// The due agents to start now and how many are deferred by `max_concurrent_targets`
/// (which counts the agents already in flight). Agents with fewer failed attempts go
/// first, so a few broken machines cannot take every slot.
fn pick(assessment: &Assessment, spec: &ScheduleSpec) -> (Vec<AgentId>, usize) {
    let n_in_flight = assessment
        .agents
        .iter()
        .filter(|agent| agent.standing == Standing::InFlight)
        .count();
    let mut due: Vec<&AgentStanding> = assessment
        .agents
        .iter()
        .filter(|agent| agent.standing == Standing::Due)
        .collect();
    due.sort_by_key(|agent| agent.coverage.as_ref().map_or(0, |c| c.n_failed_attempts));
    let room = spec.max_concurrent_targets.map_or(usize::MAX, |max| {
        usize::try_from(max.get())
            .unwrap_or(usize::MAX)
            .saturating_sub(n_in_flight)
    });
    let n_deferred = due.len().saturating_sub(room);
    let agents = due
        .into_iter()
        .take(room)
        .map(|agent| agent.agent_id.clone())
        .collect();
    (agents, n_deferred)
}

/// Creates the run on `agents` at `job_version` (pinned, so a version applied meanwhile
/// waits for the next tick) and audits it as `schedule.reconcile`.
async fn start(
    app: &App,
    schedule: &Schedule,
    spec: &ScheduleSpec,
    job_version: u32,
    agents: &[AgentId],
    now: Timestamp,
) -> Result<RunId> {
    let deadline = spec.deadline_secs.map(|secs| {
        let secs = SignedDuration::from_secs(i64::try_from(secs.get()).unwrap_or(i64::MAX));
        now.checked_add(secs).unwrap_or(Timestamp::MAX)
    });
    let request = RunRequest {
        job_id: Some(spec.job.clone()),
        script: None,
        targets: TargetSpec {
            agents: agents.to_vec(),
            ..TargetSpec::default()
        },
        deadline,
        rollout: None,
    };
    let origin = Origin {
        schedule_name: Some(schedule.name.clone()),
        job_version: Some(job_version),
    };
    let actor = Actor::system(&format!("schedule:{}", schedule.name));
    let target = format!("schedule/{}", schedule.name);
    match engine::create_run_from(app, request, &actor, origin).await {
        Ok(created) => {
            let summary = serde_json::json!({ "run_id": created.run_id, "job_version": job_version, "n_targets": created.n_targets });
            app.auditor
                .succeeded(&actor, "schedule.reconcile", target, summary)
                .await;
            tracing::info!(schedule = %schedule.name, run_id = %created.run_id, job_version, n_targets = created.n_targets, "A desired-state schedule started a run.");
            Ok(created.run_id)
        }
        Err(err) => {
            let summary = serde_json::json!({ "job_version": job_version, "n_targets": agents.len(), "error": err.to_string() });
            app.auditor
                .record(
                    &actor,
                    "schedule.reconcile",
                    target,
                    summary,
                    AuditOutcome::Failed,
                )
                .await;
            Err(err)
        }
    }
}

/// The agents `spec` resolves to now; none when it names an empty group or an unknown
/// agent (a bad request for a run, a normal moment for a desired state).
async fn targeted_agents(app: &App, spec: &TargetSpec) -> Result<Vec<AgentId>> {
    match targets::resolve(&app.store, spec).await {
        Ok(resolution) => Ok(resolution.agents),
        Err(Error::BadRequest(_)) => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use tutti_store::TargetState;

    use super::*;

    fn at(minutes: i64) -> Timestamp {
        let base: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        base + SignedDuration::from_mins(minutes)
    }

    /// Coverage of agent `a` whose latest target is in `state`, with `n_failed` failed
    /// attempts (the last ending at minute 0) and a success at `succeeded` (minutes).
    fn covered(state: TargetState, n_failed: u32, succeeded: Option<i64>) -> AgentCoverage {
        AgentCoverage {
            agent_id: AgentId::parse("a").unwrap(),
            run_id: RunId::new(ulid::Ulid::nil()),
            state,
            queued_at: at(-1),
            finished_at: state.is_final().then(|| at(0)),
            succeeded_at: succeeded.map(at),
            n_failed_attempts: n_failed,
            failed_at: (n_failed > 0).then(|| at(0)),
            n_open: u32::from(!state.is_final()),
        }
    }

    fn once() -> Rule {
        Rule {
            judged_version: Some(4),
            since: None,
        }
    }

    #[track_caller]
    fn check(coverage: Option<AgentCoverage>, rule: Rule, now_minutes: i64, expected: Standing) {
        assert_eq!(judge(coverage.as_ref(), &rule, at(now_minutes)), expected);
    }

    #[test]
    fn once_per_version_standings() {
        use TargetState::*;
        check(None, once(), 0, Standing::Due);
        check(
            Some(covered(Succeeded, 0, Some(-1))),
            once(),
            0,
            Standing::Done,
        );
        check(
            Some(covered(Queued, 0, None)),
            once(),
            0,
            Standing::InFlight,
        );
        check(
            Some(covered(Running, 2, None)),
            once(),
            0,
            Standing::InFlight,
        );
        // Killed or skipped targets are no failed attempts: due again at once.
        check(Some(covered(Skipped, 0, None)), once(), 0, Standing::Due);
        // One failure waits a minute, two wait two, four wait eight.
        let waiting = |minutes| Standing::Waiting {
            retry_at: at(minutes),
        };
        check(Some(covered(Failed, 1, None)), once(), 0, waiting(1));
        check(Some(covered(Failed, 1, None)), once(), 1, Standing::Due);
        check(Some(covered(Expired, 2, None)), once(), 1, waiting(2));
        check(Some(covered(Missed, 4, None)), once(), 7, waiting(8));
        check(Some(covered(Missed, 4, None)), once(), 8, Standing::Due);
        // The fifth failure is the last.
        let limit = MAX_FAILED_ATTEMPTS;
        check(
            Some(covered(Failed, limit, None)),
            once(),
            600,
            Standing::Failed,
        );
    }

    #[test]
    fn every_hours_counts_only_successes_inside_the_period() {
        let now = 10 * 60;
        let rule = Rule::of(
            DesiredState::EveryHours(crate::schedule::values::EveryHours::try_from(6_u64).unwrap()),
            4,
            at(now),
        );
        assert_eq!(rule.judged_version, None, "any version counts");
        assert_eq!(rule.since, Some(at(4 * 60)));
        let recent = covered(TargetState::Succeeded, 0, Some(5 * 60));
        check(Some(recent), rule, now, Standing::Done);
        let stale = covered(TargetState::Succeeded, 0, Some(3 * 60));
        check(Some(stale), rule, now, Standing::Due);
    }

    #[test]
    fn max_concurrent_targets_counts_agents_in_flight_and_prefers_fresh_agents() {
        let manifest = "kind: Schedule\nname: s\njob: j\ntargets: {all: true}\ndesired_state: {once_per_version: true}\nmax_concurrent_targets: 3\n";
        let spec = crate::schedule::parse_yaml(manifest)
            .unwrap()
            .remove(0)
            .spec;
        let agent = |name: &str, standing, n_failed| AgentStanding {
            agent_id: AgentId::parse(name).unwrap(),
            standing,
            coverage: Some(covered(TargetState::Failed, n_failed, None)),
        };
        let assessment = Assessment {
            job_version: 1,
            judged_version: Some(1),
            agents: vec![
                agent("a", Standing::Due, 2),
                agent("b", Standing::InFlight, 0),
                agent("c", Standing::Due, 0),
                agent("d", Standing::Done, 0),
                agent("e", Standing::Due, 1),
            ],
        };
        let (picked, n_deferred) = pick(&assessment, &spec);
        let picked: Vec<&str> = picked.iter().map(AgentId::as_str).collect();
        assert_eq!((picked, n_deferred), (vec!["c", "e"], 1));
    }

    #[test]
    fn backoff_doubles_from_a_minute_up_to_an_hour() {
        let minutes: Vec<i64> = [1, 2, 3, 5, 6, 7, 8, 40]
            .into_iter()
            .map(|n| backoff(n).as_mins())
            .collect();
        assert_eq!(minutes, [1, 2, 4, 16, 32, 60, 60, 60]);
    }
}
