//! Layered agent configuration in `tutti_config`: get, set and delete the `global`,
//! `group.<g>` and `agent.<id>` layers, and an agent's effective configuration.
//!
//! The wire type `AgentConfig` ignores unknown fields, as wire types must; the API body
//! [`ConfigLayer`] mirrors it with `deny_unknown_fields`, because a misspelt key typed by
//! an operator must be an error, not a silently ignored setting. Values outside their
//! range (`tutti_proto::config::RANGES`) are refused before anything is written, and an
//! agent's layer needs the agent to exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tutti_proto::AgentId;
use tutti_proto::config::AgentConfig;

use crate::actor::Actor;
use crate::api::json::ApiJson;
use crate::api::{online_since, parse_id};
use crate::app::App;
use crate::error::{Error, Result};
use crate::fleet_kv::ConfigScope;
pub use crate::views::config::{EffectiveView, effective_view};
pub use tutti_api::fleet::ConfigLayer;

#[utoipa::path(get, path = "/api/v1/config/global", responses((status = 200, description = "The global layer ({} when unset)", body = ConfigLayer)))]
/// The global layer.
pub async fn get_global(State(app): State<App>) -> Result<Json<AgentConfig>> {
    get_layer(&app, ConfigScope::Global).await
}

#[utoipa::path(put, path = "/api/v1/config/global", request_body = ConfigLayer, responses((status = 200, body = ConfigLayer), (status = 400, body = crate::api::error::ErrorBody)))]
/// Replaces the global layer.
pub async fn put_global(
    State(app): State<App>,
    actor: Actor,
    ApiJson(layer): ApiJson<ConfigLayer>,
) -> Result<Json<AgentConfig>> {
    put_layer(&app, &actor, ConfigScope::Global, layer).await
}

#[utoipa::path(delete, path = "/api/v1/config/global", responses((status = 204, description = "Deleted")))]
/// Deletes the global layer.
pub async fn delete_global(State(app): State<App>, actor: Actor) -> Result<StatusCode> {
    delete_layer(&app, &actor, ConfigScope::Global).await
}

#[utoipa::path(get, path = "/api/v1/config/groups/{group}", responses((status = 200, body = ConfigLayer)))]
/// A group's layer.
pub async fn get_group(
    State(app): State<App>,
    Path(group): Path<String>,
) -> Result<Json<AgentConfig>> {
    get_layer(&app, ConfigScope::Group(parse_id(&group)?)).await
}

#[utoipa::path(put, path = "/api/v1/config/groups/{group}", request_body = ConfigLayer, responses((status = 200, body = ConfigLayer), (status = 400, body = crate::api::error::ErrorBody)))]
/// Replaces a group's layer.
pub async fn put_group(
    State(app): State<App>,
    actor: Actor,
    Path(group): Path<String>,
    ApiJson(layer): ApiJson<ConfigLayer>,
) -> Result<Json<AgentConfig>> {
    put_layer(&app, &actor, ConfigScope::Group(parse_id(&group)?), layer).await
}

#[utoipa::path(delete, path = "/api/v1/config/groups/{group}", responses((status = 204, description = "Deleted")))]
/// Deletes a group's layer.
pub async fn delete_group(
    State(app): State<App>,
    actor: Actor,
    Path(group): Path<String>,
) -> Result<StatusCode> {
    delete_layer(&app, &actor, ConfigScope::Group(parse_id(&group)?)).await
}

#[utoipa::path(get, path = "/api/v1/config/agents/{agent_id}", responses((status = 200, body = ConfigLayer)))]
/// An agent's own layer.
pub async fn get_agent(
    State(app): State<App>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentConfig>> {
    get_layer(&app, ConfigScope::Agent(parse_id(&agent_id)?)).await
}

#[utoipa::path(put, path = "/api/v1/config/agents/{agent_id}", request_body = ConfigLayer, responses((status = 200, body = ConfigLayer), (status = 400, body = crate::api::error::ErrorBody)))]
/// Replaces an agent's own layer.
pub async fn put_agent(
    State(app): State<App>,
    actor: Actor,
    Path(agent_id): Path<String>,
    ApiJson(layer): ApiJson<ConfigLayer>,
) -> Result<Json<AgentConfig>> {
    put_layer(
        &app,
        &actor,
        ConfigScope::Agent(parse_id(&agent_id)?),
        layer,
    )
    .await
}

#[utoipa::path(delete, path = "/api/v1/config/agents/{agent_id}", responses((status = 204, description = "Deleted")))]
/// Deletes an agent's own layer.
pub async fn delete_agent(
    State(app): State<App>,
    actor: Actor,
    Path(agent_id): Path<String>,
) -> Result<StatusCode> {
    delete_layer(&app, &actor, ConfigScope::Agent(parse_id(&agent_id)?)).await
}

#[utoipa::path(get, path = "/api/v1/agents/{agent_id}/config", responses((status = 200, description = "Layers and the effective configuration", body = EffectiveView), (status = 404, body = crate::api::error::ErrorBody)))]
/// An agent's effective configuration and the layers it comes from.
pub async fn effective(
    State(app): State<App>,
    Path(agent_id): Path<String>,
) -> Result<Json<EffectiveView>> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    let agent = app.store.get_agent(&agent_id, online_since(&app)).await?;
    Ok(Json(effective_view(&app, &agent).await?))
}

async fn get_layer(app: &App, scope: ConfigScope) -> Result<Json<AgentConfig>> {
    Ok(Json(app.kv.get_config(&scope).await?.unwrap_or_default()))
}

async fn put_layer(
    app: &App,
    actor: &Actor,
    scope: ConfigScope,
    layer: ConfigLayer,
) -> Result<Json<AgentConfig>> {
    let config = AgentConfig::from(layer);
    let errors = config.check();
    if !errors.is_empty() {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(Error::bad_request(format!(
            "configuration out of range: {} (docs/protocol.md lists every key's range)",
            listed.join("; ")
        )));
    }
    if let ConfigScope::Agent(agent_id) = &scope {
        // A layer for an id that is not enrolled would wait, unseen, for whoever enrolls
        // under that name later.
        app.store.get_agent(agent_id, online_since(app)).await?;
    }
    app.kv.put_config(&scope, &config).await?;
    let summary = serde_json::to_value(&config).unwrap_or_default();
    app.auditor
        .succeeded(actor, "config.set", scope_target(&scope), summary)
        .await;
    Ok(Json(config))
}

async fn delete_layer(app: &App, actor: &Actor, scope: ConfigScope) -> Result<StatusCode> {
    app.kv.delete_config(&scope).await?;
    app.auditor
        .succeeded(
            actor,
            "config.delete",
            scope_target(&scope),
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

fn scope_target(scope: &ConfigScope) -> String {
    match scope {
        ConfigScope::Global => "config/global".to_string(),
        ConfigScope::Group(group) => format!("config/group/{group}"),
        ConfigScope::Agent(agent_id) => format!("config/agent/{agent_id}"),
    }
}
