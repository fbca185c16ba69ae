//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` attributes and the request types' `ToSchema` derives.
//!
//! Request bodies are described field by field. Responses built from store types are
//! described as objects with a sentence, because `tutti-store` (rightly) does not depend on
//! utoipa; the test `every_route_is_in_the_openapi_document` keeps the path list complete.

use axum::Json;
use utoipa::OpenApi;

use crate::api::{
    agents, audit_log, enroll, error, fleet_config, groups, health, inventory, jobs, live, runs,
    tokens,
};

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "tutti server API",
        description = "Fleet management over NATS JetStream. Unauthenticated until accounts and roles exist: listen on localhost only."
    ),
    paths(
        enroll::enroll,
        agents::list,
        agents::detail,
        agents::set_groups,
        agents::delete,
        inventory::agent_inventory,
        inventory::agent_changes,
        inventory::search,
        fleet_config::effective,
        fleet_config::get_global,
        fleet_config::put_global,
        fleet_config::delete_global,
        fleet_config::get_group,
        fleet_config::put_group,
        fleet_config::delete_group,
        fleet_config::get_agent,
        fleet_config::put_agent,
        fleet_config::delete_agent,
        groups::list,
        groups::create,
        groups::delete,
        jobs::apply,
        jobs::list,
        jobs::detail,
        jobs::versions,
        jobs::delete,
        jobs::revoke,
        runs::create,
        runs::list,
        runs::detail,
        runs::results,
        runs::result_detail,
        runs::kill,
        live::progress,
        live::output,
        tokens::create,
        tokens::list,
        tokens::revoke,
        audit_log::query,
        audit_log::anomalies,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        error::ErrorBody,
        crate::engine::RunRequest,
        crate::engine::CreatedRun,
        crate::engine::KillOutcome,
        crate::engine::targets::TargetSpec,
        crate::manifest::JobSpec,
        crate::manifest::ScriptObject,
        crate::manifest::ShellName,
        jobs::ApplyResponse,
        jobs::Applied,
        jobs::RevokeRequest,
        jobs::RevokeResponse,
        agents::SetGroups,
        groups::NewGroup,
        fleet_config::ConfigLayer,
        crate::tokens::TokenRequest,
        crate::tokens::CreatedToken,
    ))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
