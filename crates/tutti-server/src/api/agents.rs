//! `/api/v1/agents`: list (filter, search, sort, pages), detail with inventory and recent
//! runs, set groups, delete.
//!
//! Group membership is written to the store (for queries and target resolution) and to
//! the `tutti_groups` KV bucket (what the agent's command consumer follows), store first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tutti_proto::{AgentId, GroupName};
use tutti_store::{Agent, AgentQuery, AgentSort, Liveness, Page, Paged, SortDir, StoreError};

use crate::actor::Actor;
use crate::api::json::{ApiJson, ApiQuery};
use crate::api::{online_since, parse_id};
use crate::app::App;
use crate::error::Result;
pub use tutti_api::agents::AgentDetail;

/// Query of `GET /api/v1/agents`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `online`, `offline` or `never`.
    pub liveness: Option<String>,
    /// Only members of this group.
    pub group: Option<String>,
    /// Only this OS name.
    pub os: Option<String>,
    /// Substring of id or hostname.
    pub search: Option<String>,
    /// `id`, `hostname`, `last_heartbeat` or `enrolled_at`.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub dir: Option<String>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

/// Body of `PUT /api/v1/agents/{id}/groups`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGroups {
    /// Groups in configuration-layer order; missing groups are created.
    #[schema(value_type = Vec<String>)]
    pub groups: Vec<GroupName>,
}

#[utoipa::path(get, path = "/api/v1/agents", params(ListParams), responses((status = 200, description = "A page of agents", body = tutti_api::Paged<tutti_api::agents::Agent>), (status = 400, body = crate::api::error::ErrorBody)))]
/// Lists agents.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Paged<Agent>>> {
    let query = agent_query(&app, params)?;
    Ok(Json(app.store.list_agents(&query).await?))
}

#[utoipa::path(get, path = "/api/v1/agents/{agent_id}", responses((status = 200, description = "Agent, inventory and recent runs", body = AgentDetail), (status = 404, body = crate::api::error::ErrorBody)))]
/// One agent with its inventory and recent runs.
pub async fn detail(
    State(app): State<App>,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentDetail>> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    let agent = app.store.get_agent(&agent_id, online_since(&app)).await?;
    let inventory = match app.store.get_inventory(&agent_id).await {
        Ok(inventory) => Some(inventory),
        Err(StoreError::NotFound(_)) => None,
        Err(err) => return Err(err.into()),
    };
    let recent_runs = app.store.agent_targets(&agent_id, Page::first(20)).await?;
    let broker_identities = app.store.broker_identities_of(&agent_id).await?;
    Ok(Json(AgentDetail {
        agent,
        inventory,
        recent_runs,
        broker_identities,
    }))
}

#[utoipa::path(put, path = "/api/v1/agents/{agent_id}/groups", request_body = SetGroups, responses((status = 200, description = "The agent with its new groups", body = tutti_api::agents::Agent), (status = 404, body = crate::api::error::ErrorBody)))]
/// Replaces an agent's groups.
pub async fn set_groups(
    State(app): State<App>,
    actor: Actor,
    Path(agent_id): Path<String>,
    ApiJson(body): ApiJson<SetGroups>,
) -> Result<Json<Agent>> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    let groups = dedup(body.groups);
    app.store
        .set_agent_groups(&agent_id, groups.clone(), jiff::Timestamp::now())
        .await?;
    app.kv.put_groups(&agent_id, &groups).await?;
    let summary = serde_json::json!({ "groups": groups });
    app.auditor
        .succeeded(
            &actor,
            "agent.set_groups",
            format!("agent/{agent_id}"),
            summary,
        )
        .await;
    Ok(Json(
        app.store.get_agent(&agent_id, online_since(&app)).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/agents/{agent_id}", responses((status = 204, description = "Deleted"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Deletes an agent (its run history stays). It must re-enroll to come back.
pub async fn delete(
    State(app): State<App>,
    actor: Actor,
    Path(agent_id): Path<String>,
) -> Result<StatusCode> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    // Revoked on the broker first: if the broker cannot take it, nothing is deleted and
    // the operator's retry pushes the revocation again.
    crate::broker_identity::revoke(&app, &actor, &agent_id).await?;
    app.store.delete_agent(&agent_id).await?;
    app.kv.delete_groups(&agent_id).await?;
    app.auditor
        .succeeded(
            &actor,
            "agent.delete",
            format!("agent/{agent_id}"),
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

fn agent_query(app: &App, params: ListParams) -> Result<AgentQuery> {
    let mut query = AgentQuery::all(online_since(app));
    query.liveness = params.liveness.as_deref().map(parse_liveness).transpose()?;
    query.group = params
        .group
        .as_deref()
        .map(parse_id::<GroupName>)
        .transpose()?;
    query.os = params.os;
    query.search = params.search.filter(|text| !text.is_empty());
    query.sort = params
        .sort
        .as_deref()
        .map(parse_sort)
        .transpose()?
        .unwrap_or_default();
    query.dir = params
        .dir
        .as_deref()
        .map(parse_dir)
        .transpose()?
        .unwrap_or_default();
    query.page = Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0));
    Ok(query)
}

fn parse_liveness(text: &str) -> Result<Liveness> {
    match text {
        "online" => Ok(Liveness::Online),
        "offline" => Ok(Liveness::Offline),
        "never" => Ok(Liveness::Never),
        other => Err(crate::error::Error::bad_request(format!(
            "invalid liveness {other:?} (use online, offline or never)"
        ))),
    }
}

fn parse_sort(text: &str) -> Result<AgentSort> {
    match text {
        "id" => Ok(AgentSort::Id),
        "hostname" => Ok(AgentSort::Hostname),
        "last_heartbeat" => Ok(AgentSort::LastHeartbeat),
        "enrolled_at" => Ok(AgentSort::EnrolledAt),
        other => Err(crate::error::Error::bad_request(format!(
            "invalid sort {other:?} (use id, hostname, last_heartbeat or enrolled_at)"
        ))),
    }
}

/// `asc` or `desc`, shared by every sorted list.
pub fn parse_dir(text: &str) -> Result<SortDir> {
    match text {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        other => Err(crate::error::Error::bad_request(format!(
            "invalid dir {other:?} (use asc or desc)"
        ))),
    }
}

fn dedup(groups: Vec<GroupName>) -> Vec<GroupName> {
    let mut seen = std::collections::BTreeSet::new();
    groups
        .into_iter()
        .filter(|group| seen.insert(group.clone()))
        .collect()
}
