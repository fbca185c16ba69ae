//! `/api/v1/runs/{run_id}/rollout/{abort,pause,resume}`: an operator stops, holds or
//! continues a run's rollout. The rules (what abort skips, what may be resumed) are in
//! `engine/rollout/control.rs`; the rollout itself is shown in the run view.

use axum::Json;
use axum::extract::{Path, State};
use tutti_proto::RunId;

use crate::actor::Actor;
use crate::api::parse_id;
use crate::app::App;
use crate::engine::rollout::{self, RolloutView};
use crate::error::Result;

#[utoipa::path(post, path = "/api/v1/runs/{run_id}/rollout/abort", responses((status = 200, body = RolloutView), (status = 404, body = crate::api::error::ErrorBody), (status = 409, body = crate::api::error::ErrorBody)))]
/// Aborts a rollout: nothing more is released and held targets are skipped
/// (`rollout_aborted`); released targets finish. Resumable.
pub async fn abort(
    State(app): State<App>,
    actor: Actor,
    Path(run_id): Path<String>,
) -> Result<Json<RolloutView>> {
    let run_id: RunId = parse_id(&run_id)?;
    let view = rollout::abort(&app, run_id, &actor).await?;
    audit(&app, &actor, "rollout.abort", &view).await;
    Ok(Json(view))
}

#[utoipa::path(post, path = "/api/v1/runs/{run_id}/rollout/pause", responses((status = 200, body = RolloutView), (status = 404, body = crate::api::error::ErrorBody), (status = 409, body = crate::api::error::ErrorBody)))]
/// Pauses a rollout: nothing more is released; held targets stay held.
pub async fn pause(
    State(app): State<App>,
    actor: Actor,
    Path(run_id): Path<String>,
) -> Result<Json<RolloutView>> {
    let run_id: RunId = parse_id(&run_id)?;
    let view = rollout::pause(&app, run_id, &actor).await?;
    audit(&app, &actor, "rollout.pause", &view).await;
    Ok(Json(view))
}

#[utoipa::path(post, path = "/api/v1/runs/{run_id}/rollout/resume", responses((status = 200, body = RolloutView), (status = 404, body = crate::api::error::ErrorBody), (status = 409, body = crate::api::error::ErrorBody)))]
/// Resumes a paused rollout, or one an operator aborted (its skipped held targets are held
/// again). A rollout the failure threshold aborted cannot be resumed (409).
pub async fn resume(
    State(app): State<App>,
    actor: Actor,
    Path(run_id): Path<String>,
) -> Result<Json<RolloutView>> {
    let run_id: RunId = parse_id(&run_id)?;
    let view = rollout::resume(&app, run_id).await?;
    audit(&app, &actor, "rollout.resume", &view).await;
    Ok(Json(view))
}

async fn audit(app: &App, actor: &Actor, action: &str, view: &RolloutView) {
    let summary = serde_json::json!({
        "state": view.rollout.state,
        "wave": view.rollout.current_wave,
        "held": view.held,
    });
    app.auditor
        .succeeded(
            actor,
            action,
            format!("run/{}", view.rollout.run_id),
            summary,
        )
        .await;
}
