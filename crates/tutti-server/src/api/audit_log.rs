//! Read-only views for operators: the audit log (filter by actor, action, target, time)
//! and the anomalies the projectors recorded.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_store::{Anomaly, AuditEntry, AuditQuery, Page, Paged};

use crate::api::PageParams;
use crate::api::json::ApiQuery;
use crate::app::App;
use crate::error::Result;

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action, e.g. `run.create`.
    pub action: Option<String>,
    /// Exact target, e.g. `job/uptime`.
    pub target: Option<String>,
    /// At or after (RFC 3339).
    #[param(value_type = Option<String>)]
    pub from: Option<Timestamp>,
    /// Before (RFC 3339).
    #[param(value_type = Option<String>)]
    pub until: Option<Timestamp>,
    /// Rows per page.
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams), responses((status = 200, description = "Audit entries, newest first", body = tutti_api::Paged<tutti_api::audit::AuditEntry>)))]
/// Queries the audit log.
pub async fn query(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Paged<AuditEntry>>> {
    let query = AuditQuery {
        actor: params.actor,
        action: params.action,
        target: params.target,
        from: params.from,
        until: params.until,
        page: Page::new(params.limit.unwrap_or(50), params.offset.unwrap_or(0)),
    };
    Ok(Json(app.store.query_audit(&query).await?))
}

#[utoipa::path(get, path = "/api/v1/anomalies", params(PageParams), responses((status = 200, description = "Messages the projectors could not apply, newest first", body = tutti_api::Paged<tutti_api::audit::Anomaly>)))]
/// Lists anomalies (results for unknown runs, from untargeted agents, ...).
pub async fn anomalies(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<Anomaly>>> {
    Ok(Json(app.store.list_anomalies(params.page()).await?))
}
