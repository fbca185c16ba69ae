//! Inventory: one agent's facts and packages, its history of changes, and the fleet-wide
//! package search (`?q=name` or `?q=name@version`).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use tutti_proto::AgentId;
use tutti_store::{InventoryChange, PackageHit, PackageQuery, Page, Paged};

use crate::api::json::ApiQuery;
use crate::api::{PageParams, parse_id};
use crate::app::App;
use crate::error::{Error, Result};
pub use tutti_api::inventory::InventoryView;

/// Query of `GET /api/v1/agents/{agent_id}/inventory`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PackagesParams {
    /// Substring of package names.
    pub search: Option<String>,
    /// Packages per page.
    pub limit: Option<u32>,
    /// Packages to skip.
    pub offset: Option<u64>,
}

/// Query of `GET /api/v1/inventory/packages`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// `name` or `name@version`.
    pub q: String,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/agents/{agent_id}/inventory", params(PackagesParams), responses((status = 200, description = "Facts and a page of packages", body = InventoryView), (status = 404, body = crate::api::error::ErrorBody)))]
/// One agent's current inventory.
pub async fn agent_inventory(
    State(app): State<App>,
    Path(agent_id): Path<String>,
    ApiQuery(params): ApiQuery<PackagesParams>,
) -> Result<Json<InventoryView>> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    let inventory = app.store.get_inventory(&agent_id).await?;
    let page = Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0));
    let search = params.search.as_deref().filter(|text| !text.is_empty());
    let packages = app
        .store
        .list_agent_packages(&agent_id, search, page)
        .await?;
    Ok(Json(InventoryView {
        inventory,
        packages,
    }))
}

#[utoipa::path(get, path = "/api/v1/agents/{agent_id}/inventory/changes", params(PageParams), responses((status = 200, description = "Added, removed and changed items, newest first", body = tutti_api::Paged<tutti_api::inventory::InventoryChange>), (status = 404, description = "No such agent", body = crate::api::error::ErrorBody)))]
/// One agent's inventory history.
pub async fn agent_changes(
    State(app): State<App>,
    Path(agent_id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<InventoryChange>>> {
    let agent_id: AgentId = parse_id(&agent_id)?;
    // An unknown agent is 404, as for its inventory, not an empty history.
    app.store
        .get_agent(&agent_id, crate::api::online_since(&app))
        .await?;
    Ok(Json(
        app.store
            .list_inventory_changes(&agent_id, params.page())
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/inventory/packages", params(SearchParams), responses((status = 200, description = "Agents that have the package", body = tutti_api::Paged<tutti_api::inventory::PackageHit>), (status = 400, body = crate::api::error::ErrorBody)))]
/// Fleet-wide package search.
pub async fn search(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<Paged<PackageHit>>> {
    let (name, version) = match params.q.split_once('@') {
        Some((name, version)) => (name.trim(), Some(version.trim())),
        None => (params.q.trim(), None),
    };
    if name.is_empty() || version.is_some_and(str::is_empty) {
        return Err(Error::bad_request(
            "q must be a package name or name@version",
        ));
    }
    let query = PackageQuery {
        name: name.to_string(),
        version: version.map(str::to_string),
        page: Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0)),
    };
    Ok(Json(app.store.search_packages(&query).await?))
}
