//! `/api/v1/groups`: list with member counts, create, delete.
//!
//! Deleting a group removes it from every member; their new memberships are written to
//! the `tutti_groups` KV bucket so agents stop reading the group's command subject.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_proto::GroupName;
use tutti_store::{AgentQuery, Group, MAX_PAGE_LIMIT, Page, Paged};

use crate::actor::Actor;
use crate::api::json::{ApiJson, ApiQuery};
use crate::api::{PageParams, parse_id};
use crate::app::App;
use crate::error::Result;

/// Body of `POST /api/v1/groups`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// The group name (`[a-z0-9-]`, at most 64 characters).
    #[schema(value_type = String)]
    pub name: GroupName,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

#[utoipa::path(get, path = "/api/v1/groups", params(PageParams), responses((status = 200, description = "Groups with member counts", body = tutti_api::Paged<tutti_api::agents::Group>)))]
/// Lists groups.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<Group>>> {
    Ok(Json(app.store.list_groups(params.page()).await?))
}

#[utoipa::path(post, path = "/api/v1/groups", request_body = NewGroup, responses((status = 201, description = "Created"), (status = 409, body = crate::api::error::ErrorBody)))]
/// Creates a group.
pub async fn create(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<NewGroup>,
) -> Result<StatusCode> {
    app.store
        .create_group(&body.name, &body.description, Timestamp::now())
        .await?;
    let summary = serde_json::json!({ "description": body.description });
    app.auditor
        .succeeded(
            &actor,
            "group.create",
            format!("group/{}", body.name),
            summary,
        )
        .await;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}", responses((status = 204, description = "Deleted"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Deletes a group and removes it from its members.
pub async fn delete(
    State(app): State<App>,
    actor: Actor,
    Path(group): Path<String>,
) -> Result<StatusCode> {
    let group: GroupName = parse_id(&group)?;
    let mut query = AgentQuery::all(Timestamp::now());
    query.group = Some(group.clone());
    query.page = Page::first(MAX_PAGE_LIMIT);
    let mut members = Vec::new();
    loop {
        let page = app.store.list_agents(&query).await?;
        let n_page = page.items.len();
        members.extend(page.items);
        if n_page < MAX_PAGE_LIMIT as usize {
            break;
        }
        query.page = Page::new(MAX_PAGE_LIMIT, members.len() as u64);
    }
    app.store.delete_group(&group).await?;
    for member in &members {
        let remaining: Vec<GroupName> = member
            .groups
            .iter()
            .filter(|g| **g != group)
            .cloned()
            .collect();
        app.kv.put_groups(&member.agent_id, &remaining).await?;
    }
    let summary = serde_json::json!({ "n_members": members.len() });
    app.auditor
        .succeeded(&actor, "group.delete", format!("group/{group}"), summary)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
