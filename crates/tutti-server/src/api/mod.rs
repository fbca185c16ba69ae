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

use std::str::FromStr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tutti_store::Page;

use crate::app::App;
use crate::error::{Error, Result};

/// The whole router, with its state. Tests drive it with `oneshot`.
pub fn router(app: App) -> Router {
    let body_limit = app.config.http.body_limit_bytes;
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
        .merge(crate::web::router())
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(health::healthz))
        .route("/install.sh", get(install::script))
        .route("/downloads/{file}", get(install::download))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            crate::auth::guard::guard,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(app.clone(), client_address))
        .layer(middleware::from_fn_with_state(app.clone(), count_responses))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                )
                .on_failure(()),
        )
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

/// The header that names a request in the server's log lines and in its answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Gives every request an id: the client's `x-request-id` when it is short and plain (so a
/// proxy's id carries through), a new ULID otherwise. The answer carries it back, and every
/// log line of the request carries it in its `request` span, so `grep request_id=<id>`
/// finds what the server did for one call.
async fn request_id(mut request: Request, next: Next) -> Response {
    let sent = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte))
        })
        .map(str::to_string);
    let id = sent.unwrap_or_else(|| ulid::Ulid::new().to_string().to_ascii_lowercase());
    let value = axum::http::HeaderValue::from_str(&id)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}

/// The span of one request: its id, method and path (never the query, which may hold a
/// token).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

async fn not_found() -> Error {
    Error::NotFound("no such route".into())
}

/// Resolves the client address once per request (trusted proxies applied) for sign-in
/// throttling, enrollment and the audit log.
async fn client_address(State(app): State<App>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = crate::actor::ClientAddr::resolve(&parts, &app.config.trusted_proxies());
    parts.extensions.insert(client);
    next.run(Request::from_parts(parts, body)).await
}

async fn count_responses(State(app): State<App>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    app.metrics.count_response(response.status().as_u16());
    response
}

/// Parses an id from a path segment; a malformed id is 400, not 404.
pub fn parse_id<T>(text: &str) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|err| Error::bad_request(err.to_string()))
}

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

/// The cut-off before which a heartbeat counts as offline.
pub fn online_since(app: &App) -> Timestamp {
    let threshold =
        SignedDuration::try_from(app.config.offline_after()).unwrap_or(SignedDuration::ZERO);
    Timestamp::now()
        .checked_sub(threshold)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}
