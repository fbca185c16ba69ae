//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` attributes and the request types' `ToSchema` derives.
//!
//! Request and response bodies are described field by field: responses are `tutti-api`
//! types (the store returns them) or views here that derive `ToSchema`, so the schema is
//! derived from what is serialised. The test `every_route_is_in_the_openapi_document` keeps
//! the path list complete; `tests/response_schemas.rs` validates real answers against it.

use std::sync::OnceLock;

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use crate::api::{
    accounts, agents, api_tokens, audit_log, auth, coverage, enroll, error, fleet_config, freeze,
    groups, health, install, inventory, jobs, keys, live, rollouts, runs, schedules, tokens,
};

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "tutti server API",
        description = "Fleet management over NATS JetStream. Sign in with POST /api/v1/auth/login (a session cookie plus an x-csrf-token header on state-changing requests) or send `Authorization: Bearer <API token>`."
    ),
    paths(
        enroll::enroll,
        auth::login,
        auth::token,
        auth::me,
        auth::logout,
        auth::logout_all,
        auth::password,
        auth::mfa_setup,
        auth::mfa_confirm,
        auth::mfa_disable,
        api_tokens::list,
        api_tokens::create,
        api_tokens::revoke,
        accounts::list,
        accounts::create,
        accounts::update,
        accounts::reset_password,
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
        freeze::status,
        freeze::freeze,
        freeze::unfreeze,
        keys::status,
        keys::rotate,
        groups::list,
        groups::create,
        groups::delete,
        jobs::apply,
        jobs::list,
        jobs::detail,
        jobs::versions,
        jobs::delete,
        jobs::revoke,
        schedules::apply,
        schedules::list,
        schedules::detail,
        schedules::preview,
        coverage::coverage,
        schedules::set_enabled,
        schedules::delete,
        runs::create,
        runs::list,
        runs::detail,
        runs::results,
        runs::result_detail,
        runs::kill,
        rollouts::abort,
        rollouts::pause,
        rollouts::resume,
        live::progress,
        live::output,
        tokens::create,
        tokens::list,
        tokens::revoke,
        audit_log::query,
        audit_log::anomalies,
        health::healthz,
        install::script,
        install::download,
        health::readyz,
        health::metrics,
    ),
    components(schemas(
        error::ErrorBody,
        crate::engine::RunRequest,
        crate::engine::CreatedRun,
        crate::engine::KillOutcome,
        crate::engine::rollout::RolloutSpec,
        crate::engine::rollout::RolloutView,
        crate::engine::rollout::WaveView,
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
        freeze::FreezeRequest,
        keys::RotateRequest,
        keys::KeysView,
        crate::keyring::KeysStatus,
        crate::keyring::NextKeyStatus,
        crate::keyring::RetiringKeyStatus,
        freeze::FreezeState,
        crate::tokens::TokenRequest,
        crate::tokens::CreatedToken,
        auth::Credentials,
        auth::Me,
        auth::PasswordChange,
        auth::MfaSetup,
        auth::MfaCode,
        auth::RecoveryCodes,
        auth::MfaDisable,
        api_tokens::TokenRequest,
        crate::auth::signin::IssuedToken,
        accounts::NewAccountRequest,
        accounts::AccountWithPassword,
        accounts::AccountPatch,
        schedules::ApplyResponse,
        schedules::AppliedSchedule,
        schedules::Preview,
        schedules::SchedulePatch,
        coverage::Coverage,
        coverage::CoverageTotals,
        coverage::AgentCoverageView,
        coverage::CoverageStatus,
    ))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(contract::build).clone())
}

mod bodies;
mod contract;
