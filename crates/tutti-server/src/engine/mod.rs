//! The run engine: turns operator requests into runs, per-target rows and signed commands,
//! and stops them again (kill, revoke, expiry).
//!
//! Order matters and is chosen so that nothing is silently lost:
//! - **create**: the run and its `queued` targets are stored *before* the command is
//!   published, so a result that comes back at once always finds its target. If the
//!   publish then fails, the run is killed in the store (its targets end `skipped`,
//!   reason `killed`) and the client gets 503, rather than targets left queued forever.
//!   A manual run created while a fleet freeze is in force is allowed (agents only hold
//!   scheduled commands) but stored with `during_freeze`.
//! - **kill**: the run is written to the revocations KV first (agents that catch up later
//!   skip it even if they never see the kill message), then a signed kill is published on
//!   the subjects the run went to, then queued and delivered targets are skipped in the
//!   store. Running targets finish through the agent's `killed` result.
//! - Projectors move targets forward from agent events and results (`projector/`); the
//!   expiry sweep (`sweep.rs`) marks queued targets of runs past their deadline.
//! - A run with a rollout is stored with every target's wave and only its first wave is
//!   published at creation; `rollout/` releases the rest and decides when to stop.

pub(crate) mod key_rotation;
pub(crate) mod publish;
pub(crate) mod rollout;
pub(crate) mod sweep;
pub(crate) mod targets;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::command::{CommandBody, JobRef, KillCommand, RunCommand};
use tutti_proto::fleet::Revocation;
use tutti_proto::{AgentId, JobId, RunId};
use tutti_store::{JobDraft, MAX_PAGE_LIMIT, NewRollout, NewRun, Page, TargetQuery};

use crate::actor::Actor;
use crate::app::App;
use crate::error::{Error, Result};
use crate::manifest::JobSpec;
use targets::{Resolution, TargetSpec};
pub(crate) use tutti_api::runs::{CreatedRun, KillOutcome};

/// What `POST /api/v1/runs` asks for: a stored job or an ad-hoc script, and targets.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Run this job at its current version.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub job_id: Option<JobId>,
    /// Or run this script; it is stored as an anonymous job.
    #[serde(default)]
    pub script: Option<JobSpec>,
    /// Where to run it.
    pub targets: TargetSpec,
    /// Agents that receive the command later skip it; queued targets expire then.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Timestamp>,
    /// Release the command in waves instead of to every target at once.
    #[serde(default)]
    pub rollout: Option<rollout::RolloutSpec>,
}

/// Where a run comes from: an operator, or a schedule (which may pin a job version).
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// The schedule that fired it; `None` for a manual run.
    pub schedule_name: Option<String>,
    /// Run this version of the job instead of its current one.
    pub job_version: Option<u32>,
}

/// Creates a run, stores its targets and publishes its command.
pub(crate) async fn create_run(
    app: &App,
    request: RunRequest,
    actor: &Actor,
) -> Result<CreatedRun> {
    create_run_from(app, request, actor, Origin::default()).await
}

/// Creates a run for `origin`: a scheduled run carries `scheduled: true` in its command
/// (agents skip it during a freeze) and its schedule's name in the store.
#[tracing::instrument(name = "run", skip_all, fields(run_id = tracing::field::Empty))]
pub(crate) async fn create_run_from(
    app: &App,
    request: RunRequest,
    actor: &Actor,
    origin: Origin,
) -> Result<CreatedRun> {
    check_deadline(request.deadline)?;
    if let Some(spec) = &request.rollout {
        spec.check()?;
    }
    let choice = match (origin.job_version, &request.job_id) {
        (Some(version), Some(job_id)) => {
            let (job_id, version, spec) = pinned_job(app, job_id, version).await?;
            JobChoice::Stored(job_id, version, spec)
        }
        _ => job_for(app, &request).await?,
    };
    let resolution = targets::resolve(&app.store, &request.targets).await?;
    let rollout_plan = match &request.rollout {
        Some(spec) => Some(spec.plan(resolution.agents.len() as u64)?),
        None => None,
    };
    // The anonymous job is stored only once everything else is valid, so a rejected
    // request leaves nothing behind.
    let (job_id, job_version, spec) = match choice {
        JobChoice::Stored(job_id, version, spec) => (job_id, version, spec),
        JobChoice::Anonymous(spec) => anonymous_job(app, spec, actor).await?,
    };
    let run_id = RunId::new(ulid::Ulid::new());
    // The span is entered before the id exists; every line from here on carries it.
    tracing::Span::current().record("run_id", tracing::field::display(run_id));
    let created_at = Timestamp::now();
    let during_freeze = freeze_in_force(app, created_at).await?;
    let new_run = NewRun {
        run_id,
        job_id: job_id.clone(),
        job_version,
        created_at,
        created_by: actor.name.clone(),
        targets_spec: to_json(&request.targets)?,
        deadline: request.deadline,
        scheduled: origin.schedule_name.is_some(),
        schedule_name: origin.schedule_name.clone(),
        during_freeze,
    };
    let subjects = match rollout_plan {
        Some(plan) => start_rollout(app, new_run, &resolution, plan).await?,
        None => {
            app.store
                .create_run(new_run, resolution.agents.clone())
                .await?;
            let mut body = run_body(run_id, &job_id, job_version, &spec, request.deadline);
            if let CommandBody::Run(command) = &mut body {
                command.scheduled = origin.schedule_name.is_some();
            }
            publish_run(app, run_id, &resolution, &body).await?;
            resolution
                .outgoing
                .iter()
                .map(|o| o.subject.clone())
                .collect()
        }
    };
    app.metrics
        .runs_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(run_id = %run_id, job_id = %job_id, n_targets = resolution.agents.len(), during_freeze, "Created a run.");
    Ok(CreatedRun {
        run_id,
        job_id,
        job_version,
        n_targets: resolution.agents.len(),
        subjects,
        during_freeze,
    })
}

/// Stores a run with its rollout and releases the first wave; returns the subjects the
/// first wave went to (one per released agent).
async fn start_rollout(
    app: &App,
    new_run: NewRun,
    resolution: &Resolution,
    plan: rollout::RolloutPlan,
) -> Result<Vec<String>> {
    let run_id = new_run.run_id;
    let rollout = NewRollout {
        plan: to_json(&plan)?,
        wave_ends: plan.wave_ends,
    };
    app.store
        .create_rollout(new_run, resolution.agents.clone(), rollout)
        .await?;
    rollout::start(app, run_id).await
}

/// Whether a fleet freeze is in force at `now`. Read from KV on every run creation rather
/// than cached: one get is cheap next to storing and publishing a run, and a cached copy
/// could miss a freeze written by another server replica.
async fn freeze_in_force(app: &App, now: Timestamp) -> Result<bool> {
    let freeze = app.kv.get_freeze().await?;
    Ok(freeze.is_some_and(|freeze| freeze.in_force(now)))
}

/// Kills a run everywhere, including on agents that catch up later.
#[tracing::instrument(name = "run", skip(app, actor), fields(run_id = %run_id))]
pub(crate) async fn kill_run(app: &App, run_id: RunId, actor: &Actor) -> Result<KillOutcome> {
    let detail = app.store.get_run(&run_id).await?;
    let revocation = Revocation {
        at: Timestamp::now(),
        actor: actor.name.clone(),
        reason: "run killed".to_string(),
    };
    app.kv.revoke_run(&run_id, &revocation).await?;
    let spec: TargetSpec = serde_json::from_value(detail.run.targets_spec.clone())
        .map_err(|err| Error::internal("stored target spec", err))?;
    let agents = run_agents(app, &run_id).await?;
    // A rollout went to each released agent on its own subject.
    let outgoing = match app.store.get_rollout(&run_id).await {
        Ok(_) => agents.iter().map(targets::plan_agent).collect(),
        Err(tutti_store::StoreError::NotFound(_)) => targets::plan(&spec, &agents),
        Err(err) => return Err(err.into()),
    };
    let body = CommandBody::Kill(KillCommand { run_id });
    publish::publish_all(app, run_id, &outgoing, &body).await?;
    let n_skipped = app
        .store
        .kill_run(&run_id, &actor.name, Timestamp::now())
        .await?;
    rollout::after_kill(app, run_id).await;
    app.notify_run_changed(run_id);
    tracing::info!(run_id = %run_id, n_skipped, "Killed a run.");
    Ok(KillOutcome {
        run_id,
        n_skipped,
        n_messages: outgoing.len(),
    })
}

/// Revokes a job: agents skip queued copies of every run of it; stored targets that are
/// queued or delivered are skipped at once. Returns how many were skipped.
pub(crate) async fn revoke_job(
    app: &App,
    job_id: &JobId,
    reason: String,
    actor: &Actor,
) -> Result<u64> {
    app.store.get_job(job_id).await?;
    let revocation = Revocation {
        at: Timestamp::now(),
        actor: actor.name.clone(),
        reason,
    };
    app.kv.revoke_job(job_id, &revocation).await?;
    Ok(app
        .store
        .revoke_job(job_id, &actor.name, Timestamp::now())
        .await?)
}

fn check_deadline(deadline: Option<Timestamp>) -> Result<()> {
    match deadline {
        Some(deadline) if deadline <= Timestamp::now() => Err(Error::bad_request(format!(
            "deadline {deadline} is in the past"
        ))),
        _ => Ok(()),
    }
}

/// What a run request runs, checked but not yet stored.
enum JobChoice {
    /// A stored job at its current version.
    Stored(JobId, u32, JobSpec),
    /// An ad-hoc script, stored as an anonymous job once the request is accepted.
    Anonymous(JobSpec),
}

/// The job a request runs: a stored one at its current version, or a valid ad-hoc script.
async fn job_for(app: &App, request: &RunRequest) -> Result<JobChoice> {
    match (&request.job_id, &request.script) {
        (Some(job_id), None) => {
            let (job_id, version, spec) = stored_job(app, job_id).await?;
            Ok(JobChoice::Stored(job_id, version, spec))
        }
        (None, Some(spec)) => {
            spec.check()
                .map_err(|message| Error::bad_request(format!("script: {message}")))?;
            Ok(JobChoice::Anonymous(spec.clone()))
        }
        (Some(_), Some(_)) => Err(Error::bad_request("give either job_id or script, not both")),
        (None, None) => Err(Error::bad_request("missing job_id (or an ad-hoc script)")),
    }
}

async fn stored_job(app: &App, job_id: &JobId) -> Result<(JobId, u32, JobSpec)> {
    let job = app.store.get_job(job_id).await?;
    if job.revoked_at.is_some() {
        return Err(Error::Conflict(format!("job {job_id} is revoked")));
    }
    let spec: JobSpec = serde_json::from_value(job.definition)
        .map_err(|err| Error::internal("stored job definition", err))?;
    Ok((job.job_id, job.version, spec))
}

/// One stored version of a job (a schedule pinned to it).
async fn pinned_job(app: &App, job_id: &JobId, version: u32) -> Result<(JobId, u32, JobSpec)> {
    let job = app.store.get_job(job_id).await?;
    if job.revoked_at.is_some() {
        return Err(Error::Conflict(format!("job {job_id} is revoked")));
    }
    let stored = app.store.get_job_version(job_id, version).await?;
    let spec: JobSpec = serde_json::from_value(stored.definition)
        .map_err(|err| Error::internal("stored job definition", err))?;
    Ok((job_id.clone(), version, spec))
}

/// Stores an ad-hoc script as an anonymous job named after its content, so the same
/// script reuses one job.
async fn anonymous_job(app: &App, spec: JobSpec, actor: &Actor) -> Result<(JobId, u32, JobSpec)> {
    let definition = to_json(&spec)?;
    let digest = tutti_proto::digest::sha256_hex(definition.to_string().as_bytes());
    let job_id = JobId::parse(&format!("adhoc-{}", &digest[..16]))
        .map_err(|err| Error::internal("anonymous job id", err))?;
    let draft = JobDraft {
        job_id: job_id.clone(),
        definition,
        source_yaml: String::new(),
        anonymous: true,
    };
    let outcome = app
        .store
        .put_job(draft, &actor.name, Timestamp::now())
        .await?;
    Ok((job_id, outcome.version, spec))
}

fn run_body(
    run_id: RunId,
    job_id: &JobId,
    version: u32,
    spec: &JobSpec,
    deadline: Option<Timestamp>,
) -> CommandBody {
    let (script, sha256) = spec.command_script();
    CommandBody::Run(RunCommand {
        run_id,
        job: JobRef {
            job_id: job_id.clone(),
            version,
        },
        script,
        sha256,
        shell: spec.shell.into(),
        timeout_secs: spec.timeout_secs.get(),
        env: spec.env_map(),
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
        output_limit_bytes: spec.output_limit_bytes.get(),
        deadline,
        scheduled: false,
    })
}

async fn publish_run(
    app: &App,
    run_id: RunId,
    resolution: &Resolution,
    body: &CommandBody,
) -> Result<()> {
    match publish::publish_all(app, run_id, &resolution.outgoing, body).await {
        Ok(published) => {
            for command in published {
                app.store.set_run_command_seq(command).await?;
            }
            Ok(())
        }
        Err(err) => {
            tracing::warn!(run_id = %run_id, error = %err, "Publishing a run failed; killing it so no target stays queued.");
            if let Err(kill_err) = app
                .store
                .kill_run(&run_id, "server: publish failed", Timestamp::now())
                .await
            {
                tracing::error!(run_id = %run_id, error = %kill_err, "A run whose publish failed could not be killed; its targets stay queued until its deadline.");
            }
            Err(err)
        }
    }
}

/// Every target agent of a run that a command was sent to (all of them, except the held
/// targets of a rollout), page by page.
async fn run_agents(app: &App, run_id: &RunId) -> Result<Vec<AgentId>> {
    let mut agents = Vec::new();
    let mut offset = 0;
    loop {
        let query = TargetQuery {
            state: None,
            page: Page::new(MAX_PAGE_LIMIT, offset),
        };
        let page = app.store.list_targets(run_id, &query).await?;
        let n_page = page.items.len();
        offset += n_page as u64;
        agents.extend(
            page.items
                .into_iter()
                .filter(|target| target.wave.is_none() || target.released_at.is_some())
                .map(|target| target.agent_id),
        );
        if n_page < MAX_PAGE_LIMIT as usize || offset >= page.total {
            return Ok(agents);
        }
    }
}

fn to_json(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|err| Error::internal("encode JSON", err))
}
