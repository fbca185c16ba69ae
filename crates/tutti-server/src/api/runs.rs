//! `/api/v1/runs`: create, list with filters, detail with per-target states and counts,
//! results with output, one result with its full output, kill.
//!
//! Output references are resolved when one result's detail is read (not when the row is
//! written): the list shows the inline text (head + marker + tail when capped); the
//! detail fetches the full capped output from `tutti_output` and checks its size and
//! sha256, since any agent credential can write that bucket (see `docs/protocol.md`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tutti_proto::{AgentId, JobId, ResultId, RunId};
use tutti_store::{
    Page, Paged, RunCounts, RunQuery, RunStatus, StoredResult, TargetQuery, TargetState,
};

use crate::actor::Actor;
use crate::api::json::{ApiJson, ApiQuery};
use crate::api::parse_id;
use crate::app::App;
use crate::engine::{self, CreatedRun, KillOutcome, RunRequest};
use crate::error::{Error, Result};
use crate::views::output::resolve;
pub use tutti_api::runs::{ResolvedOutput, ResultView, RunView};

/// Query of `GET /api/v1/runs`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only runs of this job.
    pub job_id: Option<String>,
    /// `queued`, `running`, `done` or `killed`.
    pub status: Option<String>,
    /// Only runs created by this actor.
    pub created_by: Option<String>,
    /// Only runs targeting this agent.
    pub agent_id: Option<String>,
    /// Only scheduled (true) or manual (false) runs.
    pub scheduled: Option<bool>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/runs/{run_id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DetailParams {
    /// Only targets in this state.
    pub state: Option<String>,
    /// Targets per page.
    pub limit: Option<u32>,
    /// Targets to skip.
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/runs/{run_id}/results`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultsParams {
    /// Only this agent's result.
    pub agent_id: Option<String>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/runs", request_body = RunRequest, responses((status = 201, body = CreatedRun), (status = 400, body = crate::api::error::ErrorBody), (status = 404, body = crate::api::error::ErrorBody), (status = 409, description = "The job is revoked", body = crate::api::error::ErrorBody), (status = 503, body = crate::api::error::ErrorBody)))]
/// Creates a run and publishes its command.
pub async fn create(
    State(app): State<App>,
    actor: Actor,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<CreatedRun>)> {
    let targets = request.targets.clone();
    let created = engine::create_run(&app, request, &actor).await?;
    let mut summary = serde_json::json!({
        "job_id": created.job_id, "job_version": created.job_version,
        "targets": targets, "n_targets": created.n_targets,
    });
    if created.during_freeze {
        summary["during_freeze"] = true.into();
    }
    app.auditor
        .succeeded(
            &actor,
            "run.create",
            format!("run/{}", created.run_id),
            summary,
        )
        .await;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/runs", params(ListParams), responses((status = 200, description = "Runs, newest first", body = tutti_api::Paged<tutti_api::runs::Run>), (status = 400, body = crate::api::error::ErrorBody)))]
/// Lists runs.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Paged<tutti_store::Run>>> {
    let query = RunQuery {
        job_id: params
            .job_id
            .as_deref()
            .map(parse_id::<JobId>)
            .transpose()?,
        status: params.status.as_deref().map(parse_status).transpose()?,
        created_by: params.created_by,
        agent_id: params
            .agent_id
            .as_deref()
            .map(parse_id::<AgentId>)
            .transpose()?,
        scheduled: params.scheduled,
        created_from: None,
        created_until: None,
        page: Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0)),
    };
    Ok(Json(app.store.list_runs(&query).await?))
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}", params(DetailParams), responses((status = 200, description = "The run, counts per state and a page of targets", body = RunView), (status = 404, body = crate::api::error::ErrorBody)))]
/// One run with per-target states and counts.
pub async fn detail(
    State(app): State<App>,
    Path(run_id): Path<String>,
    ApiQuery(params): ApiQuery<DetailParams>,
) -> Result<Json<RunView>> {
    let run_id: RunId = parse_id(&run_id)?;
    let detail = app.store.get_run(&run_id).await?;
    let query = TargetQuery {
        state: params.state.as_deref().map(parse_state).transpose()?,
        page: Page::new(params.limit.unwrap_or(500), params.offset.unwrap_or(0)),
    };
    let targets = app.store.list_targets(&run_id, &query).await?;
    let rollout = engine::rollout::view(&app, run_id).await?;
    let mut count_by_state: std::collections::BTreeMap<String, u64> =
        counts_by_name(&detail.counts)
            .into_iter()
            .map(|(name, n)| (name.to_string(), n))
            .collect();
    if let Some(held) = rollout
        .as_ref()
        .map(|view| view.held)
        .filter(|held| *held > 0)
    {
        count_by_state.insert("held".to_string(), held);
        if let Some(queued) = count_by_state.get_mut("queued") {
            *queued = queued.saturating_sub(held);
        }
        count_by_state.retain(|_, n| *n > 0);
    }
    Ok(Json(RunView {
        detail,
        count_by_state,
        rollout,
        targets,
    }))
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}/results", params(ResultsParams), responses((status = 200, description = "Results with inline output, by agent", body = tutti_api::Paged<tutti_api::runs::StoredResult>), (status = 404, body = crate::api::error::ErrorBody)))]
/// A run's results with their inline output.
pub async fn results(
    State(app): State<App>,
    Path(run_id): Path<String>,
    ApiQuery(params): ApiQuery<ResultsParams>,
) -> Result<Json<Paged<StoredResult>>> {
    let run_id: RunId = parse_id(&run_id)?;
    app.store.get_run(&run_id).await?;
    let agent_id = params
        .agent_id
        .as_deref()
        .map(parse_id::<AgentId>)
        .transpose()?;
    let page = Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0));
    Ok(Json(
        app.store
            .list_results(&run_id, agent_id.as_ref(), page)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/runs/{run_id}/results/{agent_id}", responses((status = 200, description = "One result with its full output resolved from the object store", body = ResultView), (status = 404, body = crate::api::error::ErrorBody)))]
/// One result with its full output.
pub async fn result_detail(
    State(app): State<App>,
    Path((run_id, agent_id)): Path<(String, String)>,
) -> Result<Json<ResultView>> {
    let run_id: RunId = parse_id(&run_id)?;
    let agent_id: AgentId = parse_id(&agent_id)?;
    let stored = app
        .store
        .get_result(&ResultId::new(&run_id, &agent_id))
        .await?;
    let stdout_full = resolve(&app, &stored.result.stdout).await;
    let stderr_full = resolve(&app, &stored.result.stderr).await;
    Ok(Json(ResultView {
        stored,
        stdout_full,
        stderr_full,
    }))
}

#[utoipa::path(post, path = "/api/v1/runs/{run_id}/kill", responses((status = 200, body = KillOutcome), (status = 404, body = crate::api::error::ErrorBody)))]
/// Kills a run on every agent, including those that catch up later.
pub async fn kill(
    State(app): State<App>,
    actor: Actor,
    Path(run_id): Path<String>,
) -> Result<Json<KillOutcome>> {
    let run_id: RunId = parse_id(&run_id)?;
    let outcome = engine::kill_run(&app, run_id, &actor).await?;
    let summary = serde_json::json!({ "n_skipped": outcome.n_skipped });
    app.auditor
        .succeeded(&actor, "run.kill", format!("run/{run_id}"), summary)
        .await;
    Ok(Json(outcome))
}

/// Per-state counts keyed by the state's name.
pub fn counts_by_name(counts: &RunCounts) -> std::collections::BTreeMap<&'static str, u64> {
    counts
        .by_state
        .iter()
        .map(|(state, n)| (state.as_str(), *n))
        .collect()
}

fn parse_status(text: &str) -> Result<RunStatus> {
    RunStatus::parse(text).ok_or_else(|| {
        Error::bad_request(format!(
            "invalid status {text:?} (use queued, running, done or killed)"
        ))
    })
}

fn parse_state(text: &str) -> Result<TargetState> {
    TargetState::parse(text)
        .ok_or_else(|| Error::bad_request(format!("invalid target state {text:?}")))
}
