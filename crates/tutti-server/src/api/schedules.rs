//! `/api/v1/schedules`: apply `kind: Schedule` manifests (YAML), list them with their next
//! fire, show one with its upcoming and past fires, preview fire times, switch one on or
//! off, delete one.
//!
//! A stored schedule keeps its manifest text; the server parses it again to compute fire
//! times, so the text is the single source of truth and the JSON definition beside it is a
//! view (and what "changed" is decided on). Apply checks every document, including that
//! its job exists, before storing any.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_store::{Page, PutScheduleOutcome, Schedule, ScheduleDraft, StoreError};

use crate::actor::Actor;
use crate::api::PageParams;
use crate::api::json::{ApiJson, ApiQuery, is_yaml, manifest_text, media_type, read_body};
use crate::app::App;
use crate::error::{Error, Result};
pub use crate::schedule::stored::parse_stored;
use crate::schedule::{ParsedSchedule, parse_yaml};
pub use tutti_api::schedules::{
    AppliedSchedule, Preview, ScheduleApplyResponse as ApplyResponse, ScheduleDetail, ScheduleView,
};

/// The most fire times one preview computes.
pub const MAX_PREVIEW: usize = 100;

/// `?dry_run=` of `POST /api/v1/schedules`.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApplyParams {
    /// Validate and compare only; store nothing.
    pub dry_run: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/schedules", params(ApplyParams), request_body(content = String, description = "`kind: Schedule` manifests as YAML (application/yaml)"), responses((status = 200, body = ApplyResponse), (status = 400, description = "Invalid manifest, with line and column", body = crate::api::error::ErrorBody), (status = 415, body = crate::api::error::ErrorBody)))]
/// Applies schedule manifests.
pub async fn apply(
    State(app): State<App>,
    actor: Actor,
    ApiQuery(params): ApiQuery<ApplyParams>,
    request: Request,
) -> Result<Json<ApplyResponse>> {
    let media = media_type(request.headers().get(CONTENT_TYPE));
    if !is_yaml(media.as_deref()) {
        return Err(Error::UnsupportedMediaType(
            "send schedule manifests as application/yaml".into(),
        ));
    }
    let bytes = read_body(request, &()).await?;
    let text = manifest_text(&bytes)?;
    let schedules = parse_yaml(text).map_err(|err| Error::BadRequest(err.message))?;
    for schedule in &schedules {
        check_job_exists(&app, schedule).await?;
    }
    let dry_run = params.dry_run.unwrap_or(false);
    let mut applied = Vec::with_capacity(schedules.len());
    for schedule in schedules {
        let result = match dry_run {
            true => compare(&app, &schedule).await?,
            false => store(&app, &actor, schedule.clone()).await?,
        };
        applied.push(AppliedSchedule {
            name: schedule.name.to_string(),
            result,
        });
    }
    Ok(Json(ApplyResponse { applied }))
}

async fn check_job_exists(app: &App, schedule: &ParsedSchedule) -> Result<()> {
    match app.store.get_job(&schedule.spec.job).await {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(Error::bad_request(format!(
            "schedule {}: job {} does not exist; apply the job first",
            schedule.name, schedule.spec.job
        ))),
        Err(err) => Err(err.into()),
    }
}

fn draft(schedule: &ParsedSchedule) -> ScheduleDraft {
    ScheduleDraft {
        name: schedule.name.to_string(),
        definition: schedule.spec.to_json(),
        source_yaml: schedule.source.clone(),
        enabled: schedule.spec.enabled,
    }
}

async fn compare(app: &App, schedule: &ParsedSchedule) -> Result<PutScheduleOutcome> {
    let wanted = draft(schedule);
    Ok(match app.store.get_schedule(&wanted.name).await {
        Ok(stored)
            if stored.definition == wanted.definition && stored.enabled == wanted.enabled =>
        {
            PutScheduleOutcome::Unchanged
        }
        Ok(_) => PutScheduleOutcome::Changed,
        Err(StoreError::NotFound(_)) => PutScheduleOutcome::Created,
        Err(err) => return Err(err.into()),
    })
}

async fn store(app: &App, actor: &Actor, schedule: ParsedSchedule) -> Result<PutScheduleOutcome> {
    let draft = draft(&schedule);
    let outcome = app
        .store
        .put_schedule(draft, &actor.name, Timestamp::now())
        .await?;
    let summary = serde_json::json!({ "result": outcome, "job": schedule.spec.job });
    app.auditor
        .succeeded(
            actor,
            "schedule.apply",
            format!("schedule/{}", schedule.name),
            summary,
        )
        .await;
    Ok(outcome)
}

#[utoipa::path(get, path = "/api/v1/schedules", params(PageParams), responses((status = 200, description = "Schedules by name, each with `next_fire`", body = tutti_api::Paged<ScheduleView>)))]
/// Lists schedules.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<tutti_store::Paged<ScheduleView>>> {
    let page = app.store.list_schedules(false, params.page()).await?;
    let now = Timestamp::now();
    let items = page
        .items
        .into_iter()
        .map(|schedule| {
            let next_fire = next_fires(&schedule, now, 1).first().copied();
            ScheduleView {
                schedule,
                next_fire,
            }
        })
        .collect();
    Ok(Json(tutti_store::Paged {
        items,
        total: page.total,
    }))
}

#[utoipa::path(get, path = "/api/v1/schedules/{name}", responses((status = 200, description = "The schedule, its next five fire times and its last twenty fires", body = ScheduleDetail), (status = 404, body = crate::api::error::ErrorBody)))]
/// One schedule.
pub async fn detail(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDetail>> {
    let schedule = app.store.get_schedule(&name).await?;
    let recent = app
        .store
        .list_schedule_fires(&name, Page::new(20, 0))
        .await?;
    let last_run = match recent.items.iter().find_map(|fire| fire.run_id) {
        Some(run_id) => Some(app.store.get_run(&run_id).await?),
        None => None,
    };
    Ok(Json(ScheduleDetail {
        next_fires: next_fires(&schedule, Timestamp::now(), 5),
        recent_fires: recent.items,
        last_run,
        schedule,
    }))
}

/// `?n=&after=` of the preview.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    /// How many fire times (1 to 100, default 10).
    pub n: Option<usize>,
    /// Start after this instant (default now).
    #[param(value_type = Option<String>)]
    pub after: Option<Timestamp>,
}

#[utoipa::path(get, path = "/api/v1/schedules/{name}/preview", params(PreviewParams), responses((status = 200, body = Preview), (status = 404, body = crate::api::error::ErrorBody)))]
/// The next fire times of a schedule.
pub async fn preview(
    State(app): State<App>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<PreviewParams>,
) -> Result<Json<Preview>> {
    let n = params.n.unwrap_or(10);
    if n == 0 || n > MAX_PREVIEW {
        return Err(Error::bad_request(format!(
            "n must be between 1 and {MAX_PREVIEW}"
        )));
    }
    let schedule = app.store.get_schedule(&name).await?;
    let spec = parse_stored(&schedule)?;
    let fires = spec.next_fires(params.after.unwrap_or_else(Timestamp::now), n);
    let zone = spec.time_zone().clone();
    let local = fires
        .iter()
        .map(|fire| {
            fire.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %:z")
                .to_string()
        })
        .collect();
    Ok(Json(Preview {
        timezone: spec.timezone.as_str().to_string(),
        fires,
        local,
    }))
}

/// Body of `PATCH /api/v1/schedules/{name}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulePatch {
    /// Whether it fires.
    pub enabled: bool,
}

#[utoipa::path(patch, path = "/api/v1/schedules/{name}", request_body = SchedulePatch, responses((status = 200, description = "The schedule, switched", body = tutti_api::schedules::Schedule), (status = 404, body = crate::api::error::ErrorBody)))]
/// Switches a schedule on or off (applying its manifest again restores the manifest's flag).
pub async fn set_enabled(
    State(app): State<App>,
    actor: Actor,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SchedulePatch>,
) -> Result<Json<Schedule>> {
    app.store
        .set_schedule_enabled(&name, body.enabled, Timestamp::now())
        .await?;
    let action = if body.enabled {
        "schedule.enable"
    } else {
        "schedule.disable"
    };
    app.auditor
        .succeeded(
            &actor,
            action,
            format!("schedule/{name}"),
            serde_json::Value::Null,
        )
        .await;
    Ok(Json(app.store.get_schedule(&name).await?))
}

#[utoipa::path(delete, path = "/api/v1/schedules/{name}", responses((status = 204, description = "Deleted (its fires and runs stay)"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Deletes a schedule.
pub async fn delete(
    State(app): State<App>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    app.store.delete_schedule(&name, Timestamp::now()).await?;
    app.auditor
        .succeeded(
            &actor,
            "schedule.delete",
            format!("schedule/{name}"),
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The next `n` fires of an enabled schedule; none for a disabled or unparsable one.
fn next_fires(schedule: &Schedule, after: Timestamp, n: usize) -> Vec<Timestamp> {
    match (schedule.enabled, parse_stored(schedule)) {
        (true, Ok(spec)) => spec.next_fires(after, n),
        _ => Vec::new(),
    }
}
