//! The HTTP API: JSON under `/api/v1`, health and metrics at the root, the OpenAPI
//! document at `/api/openapi.json`.
//!
//! One file per route group. Handlers are thin: they parse ids and bodies with the
//! extractors in `json.rs`, call the store, the run engine or the KV writer, publish an
//! audit record for every state-changing call, and answer JSON. Every error is a
//! [`crate::error::Error`], turned into a response by `error.rs`.
//!
//! Every route passes `auth::guard::guard` (a `route_layer`, so it sees the matched route):
//! it looks the route up in `auth/policy.rs`, authenticates the caller and checks its role
//! before the handler runs; handlers receive the caller as an [`Actor`].
//!
//! [`Actor`]: crate::actor::Actor

pub mod accounts;
pub mod agents;
pub mod api_tokens;
pub mod audit_log;
pub mod auth;
pub mod coverage;
pub mod enroll;
pub mod error;
pub mod fleet_config;
pub mod freeze;
pub mod groups;
pub mod health;
pub mod install;
pub mod inventory;
pub mod jobs;
pub mod json;
pub mod keys;
pub mod live;
pub mod openapi;
pub mod rollouts;
pub mod runs;
pub mod schedules;
pub mod tokens;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use serde::Deserialize;
use tutti_store::Page;

use crate::app::App;

/// The API's routes: JSON under `/api/v1`, the OpenAPI document, health, metrics and the
/// agent installer. [`crate::http::router`] puts them together with the dashboard's, behind
/// the guard.
pub fn routes(app: &App) -> Router<App> {
    let manifest_limit = app.config.http.manifest_limit_bytes;
    let v1 = Router::new()
        .route("/enroll", post(enroll::enroll))
        .route("/auth/login", post(auth::login))
        .route("/auth/token", post(auth::token))
        .route("/auth/me", get(auth::me))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/auth/password", post(auth::password))
        .route("/auth/mfa/setup", post(auth::mfa_setup))
        .route("/auth/mfa/confirm", post(auth::mfa_confirm))
        .route("/auth/mfa/disable", post(auth::mfa_disable))
        .route("/tokens", get(api_tokens::list).post(api_tokens::create))
        .route(
            "/tokens/{token_id}",
            axum::routing::delete(api_tokens::revoke),
        )
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route(
            "/accounts/{username}",
            axum::routing::patch(accounts::update),
        )
        .route(
            "/accounts/{username}/password-reset",
            post(accounts::reset_password),
        )
        .route("/agents", get(agents::list))
        .route(
            "/agents/{agent_id}",
            get(agents::detail).delete(agents::delete),
        )
        .route("/agents/{agent_id}/groups", put(agents::set_groups))
        .route(
            "/agents/{agent_id}/inventory",
            get(inventory::agent_inventory),
        )
        .route(
            "/agents/{agent_id}/inventory/changes",
            get(inventory::agent_changes),
        )
        .route("/agents/{agent_id}/config", get(fleet_config::effective))
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/{group}", axum::routing::delete(groups::delete))
        .route(
            "/jobs",
            get(jobs::list)
                .post(jobs::apply)
                .layer(DefaultBodyLimit::max(manifest_limit)),
        )
        .route("/jobs/{job_id}", get(jobs::detail).delete(jobs::delete))
        .route("/jobs/{job_id}/versions", get(jobs::versions))
        .route("/jobs/{job_id}/revoke", post(jobs::revoke))
        .route(
            "/schedules",
            get(schedules::list)
                .post(schedules::apply)
                .layer(DefaultBodyLimit::max(manifest_limit)),
        )
        .route(
            "/schedules/{name}",
            get(schedules::detail)
                .patch(schedules::set_enabled)
                .delete(schedules::delete),
        )
        .route("/schedules/{name}/preview", get(schedules::preview))
        .route("/schedules/{name}/coverage", get(coverage::coverage))
        .route("/runs", get(runs::list).post(runs::create))
        .route("/runs/{run_id}", get(runs::detail))
        .route("/runs/{run_id}/results", get(runs::results))
        .route(
            "/runs/{run_id}/results/{agent_id}",
            get(runs::result_detail),
        )
        .route("/runs/{run_id}/kill", post(runs::kill))
        .route("/runs/{run_id}/rollout/abort", post(rollouts::abort))
        .route("/runs/{run_id}/rollout/pause", post(rollouts::pause))
        .route("/runs/{run_id}/rollout/resume", post(rollouts::resume))
        .route("/runs/{run_id}/progress", get(live::progress))
        .route("/runs/{run_id}/output", get(live::output))
        .route("/inventory/packages", get(inventory::search))
        .route(
            "/fleet/freeze",
            get(freeze::status)
                .put(freeze::freeze)
                .delete(freeze::unfreeze),
        )
        .route(
            "/config/global",
            get(fleet_config::get_global)
                .put(fleet_config::put_global)
                .delete(fleet_config::delete_global),
        )
        .route(
            "/config/groups/{group}",
            get(fleet_config::get_group)
                .put(fleet_config::put_group)
                .delete(fleet_config::delete_group),
        )
        .route(
            "/config/agents/{agent_id}",
            get(fleet_config::get_agent)
                .put(fleet_config::put_agent)
                .delete(fleet_config::delete_agent),
        )
        .route("/enrollment-tokens", get(tokens::list).post(tokens::create))
        .route(
            "/enrollment-tokens/{token_id}",
            axum::routing::delete(tokens::revoke),
        )
        .route("/keys", get(keys::status))
        .route("/keys/rotate", post(keys::rotate))
        .route("/audit", get(audit_log::query))
        .route("/anomalies", get(audit_log::anomalies));
    Router::new()
        .nest("/api/v1", v1)
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/install.sh", get(install::script))
        .route("/downloads/{file}", get(install::download))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}

/// The whole router, with its state (the same as [`crate::http::router`]). Tests drive it
/// with `oneshot`.
pub fn router(app: App) -> Router {
    crate::http::router(app)
}

pub use crate::views::{online_since, parse_id};

/// `?limit=&offset=` of every list.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Rows per page (1 to 500, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

impl PageParams {
    /// The store's page.
    pub fn page(self) -> Page {
        Page::new(self.limit.unwrap_or(50), self.offset.unwrap_or(0))
    }
}
