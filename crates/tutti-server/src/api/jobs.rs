//! `/api/v1/jobs`: apply manifests (YAML or JSON), list, get with the YAML source, list
//! versions, delete, revoke.
//!
//! Apply validates every document of a request before storing any, so a stream with one
//! bad document stores nothing. Each document is then stored on its own: a new version
//! only when its definition changed (a comment-only edit keeps the version).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_proto::JobId;
use tutti_store::{Job, JobDraft, JobVersion, Paged};

use crate::actor::Actor;
use crate::api::json::{ApiJson, ApiQuery, is_yaml, manifest_text, media_type, read_body};
use crate::api::{PageParams, parse_id};
use crate::app::App;
use crate::error::{Error, Result};
use crate::manifest::{self, ParsedJob};
pub use tutti_api::jobs::{Applied, ApplyResponse, ApplyResult, RevokeResponse};

/// Query of `POST /api/v1/jobs`.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApplyParams {
    /// Validate and compare with what is stored, but store nothing: each document's
    /// `result` says what applying it would do.
    pub dry_run: Option<bool>,
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Include ad-hoc (anonymous) jobs.
    pub include_anonymous: Option<bool>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

/// Body of `POST /api/v1/jobs/{job_id}/revoke`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why, for the audit log and the agents.
    #[serde(default)]
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/jobs", params(ApplyParams), request_body(content = String, description = "`kind: Job` manifests as YAML (application/yaml) or one as JSON (application/json)"), responses((status = 200, body = ApplyResponse), (status = 400, description = "Invalid manifest, with line and column", body = crate::api::error::ErrorBody), (status = 413, body = crate::api::error::ErrorBody), (status = 415, body = crate::api::error::ErrorBody)))]
/// Applies job manifests (or, with `?dry_run=true`, says what applying them would do).
pub async fn apply(
    State(app): State<App>,
    actor: Actor,
    ApiQuery(params): ApiQuery<ApplyParams>,
    request: Request,
) -> Result<Json<ApplyResponse>> {
    let media = media_type(request.headers().get(CONTENT_TYPE));
    let bytes = read_body(request, &()).await?;
    let jobs = parse_manifests(media.as_deref(), &bytes)?;
    let mut applied = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match params.dry_run.unwrap_or(false) {
            true => compare_job(&app, job).await?,
            false => store_job(&app, &actor, job).await?,
        };
        applied.push(outcome);
    }
    Ok(Json(ApplyResponse { applied }))
}

#[utoipa::path(get, path = "/api/v1/jobs", params(ListParams), responses((status = 200, description = "A page of jobs", body = tutti_api::Paged<tutti_api::jobs::Job>)))]
/// Lists jobs.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Paged<Job>>> {
    let page = PageParams {
        limit: params.limit,
        offset: params.offset,
    }
    .page();
    let include_anonymous = params.include_anonymous.unwrap_or(false);
    Ok(Json(app.store.list_jobs(include_anonymous, page).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{job_id}", responses((status = 200, description = "The job at its current version, with its manifest text in `source_yaml`", body = tutti_api::jobs::Job), (status = 404, body = crate::api::error::ErrorBody)))]
/// One job with its YAML source.
pub async fn detail(State(app): State<App>, Path(job_id): Path<String>) -> Result<Json<Job>> {
    let job_id: JobId = parse_id(&job_id)?;
    Ok(Json(app.store.get_job(&job_id).await?))
}

#[utoipa::path(get, path = "/api/v1/jobs/{job_id}/versions", params(PageParams), responses((status = 200, description = "Versions, newest first", body = tutti_api::Paged<tutti_api::jobs::JobVersion>), (status = 404, body = crate::api::error::ErrorBody)))]
/// A job's versions.
pub async fn versions(
    State(app): State<App>,
    Path(job_id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<JobVersion>>> {
    let job_id: JobId = parse_id(&job_id)?;
    app.store.get_job(&job_id).await?;
    Ok(Json(
        app.store.list_job_versions(&job_id, params.page()).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/jobs/{job_id}", responses((status = 204, description = "Deleted (its runs keep their versions)"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Deletes a job.
pub async fn delete(
    State(app): State<App>,
    actor: Actor,
    Path(job_id): Path<String>,
) -> Result<StatusCode> {
    let job_id: JobId = parse_id(&job_id)?;
    app.store.delete_job(&job_id, Timestamp::now()).await?;
    app.auditor
        .succeeded(
            &actor,
            "job.delete",
            format!("job/{job_id}"),
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/jobs/{job_id}/revoke", request_body = RevokeRequest, responses((status = 200, body = RevokeResponse), (status = 404, body = crate::api::error::ErrorBody)))]
/// Revokes a job: queued copies everywhere are skipped.
pub async fn revoke(
    State(app): State<App>,
    actor: Actor,
    Path(job_id): Path<String>,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<Json<RevokeResponse>> {
    let job_id: JobId = parse_id(&job_id)?;
    let reason = body.reason.clone();
    let n_skipped = crate::engine::revoke_job(&app, &job_id, body.reason, &actor).await?;
    let summary = serde_json::json!({ "reason": reason, "n_skipped": n_skipped });
    app.auditor
        .succeeded(&actor, "job.revoke", format!("job/{job_id}"), summary)
        .await;
    Ok(Json(RevokeResponse { n_skipped }))
}

fn parse_manifests(media: Option<&str>, bytes: &[u8]) -> Result<Vec<ParsedJob>> {
    let parsed = match media {
        Some("application/json") => manifest::parse_json(bytes),
        yaml if is_yaml(yaml) => manifest::parse_yaml(manifest_text(bytes)?),
        _ => {
            return Err(Error::UnsupportedMediaType(
                "send manifests as application/yaml or application/json".into(),
            ));
        }
    };
    parsed.map_err(|err| Error::BadRequest(err.message))
}

/// What storing `job` would do, without storing it.
async fn compare_job(app: &App, job: ParsedJob) -> Result<Applied> {
    let job_id = job.manifest.name.clone();
    let definition = serde_json::to_value(job.manifest.spec())
        .map_err(|err| Error::internal("encode job definition", err))?;
    let (version, result) = match app.store.get_job(&job_id).await {
        Ok(stored) if stored.definition == definition => (stored.version, ApplyResult::Unchanged),
        Ok(stored) => (stored.version + 1, ApplyResult::Changed),
        Err(tutti_store::StoreError::NotFound(_)) => (1, ApplyResult::Created),
        Err(err) => return Err(err.into()),
    };
    Ok(Applied {
        job_id,
        version,
        result,
    })
}

async fn store_job(app: &App, actor: &Actor, job: ParsedJob) -> Result<Applied> {
    let job_id = job.manifest.name.clone();
    let definition = serde_json::to_value(job.manifest.spec())
        .map_err(|err| Error::internal("encode job definition", err))?;
    let draft = JobDraft {
        job_id: job_id.clone(),
        definition,
        source_yaml: job.source,
        anonymous: false,
    };
    let outcome = app
        .store
        .put_job(draft, &actor.name, Timestamp::now())
        .await?;
    let result = match (outcome.changed, outcome.version) {
        (true, 1) => ApplyResult::Created,
        (true, _) => ApplyResult::Changed,
        (false, _) => ApplyResult::Unchanged,
    };
    let summary = serde_json::json!({ "version": outcome.version, "result": result.as_str() });
    app.auditor
        .succeeded(actor, "job.apply", format!("job/{job_id}"), summary)
        .await;
    Ok(Applied {
        job_id,
        version: outcome.version,
        result,
    })
}
