//! `/api/v1/tokens`: API tokens for the CLI and automation. Everyone manages their own;
//! an admin lists (`?all=true`) and revokes anyone's. A token's role never exceeds its
//! owner's, and is capped again at the owner's current role on every request.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_proto::role::Role;
use tutti_store::{ApiToken, Paged};

use crate::actor::Actor;
use crate::api::json::{ApiJson, ApiQuery};
use crate::app::App;
use crate::auth::signin::{self, IssuedToken};
use crate::error::{Error, Result};

/// `?all=&limit=&offset=` of the token list.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenListParams {
    /// Every account's tokens (admins only).
    pub all: Option<bool>,
    /// Rows per page (1 to 500, default 50).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/tokens", params(TokenListParams), responses((status = 200, description = "Tokens, newest first (never their secrets)", body = tutti_api::Paged<tutti_api::accounts::ApiToken>)))]
/// Lists one's own API tokens, or everyone's for an admin with `?all=true`.
pub async fn list(
    State(app): State<App>,
    actor: Actor,
    ApiQuery(params): ApiQuery<TokenListParams>,
) -> Result<Json<Paged<ApiToken>>> {
    let all = params.all.unwrap_or(false);
    if all && actor.role != Role::Admin {
        return Err(Error::Forbidden(
            "listing every account's tokens needs the admin role".into(),
        ));
    }
    let page = crate::api::PageParams {
        limit: params.limit,
        offset: params.offset,
    }
    .page();
    let owner = (!all).then_some(actor.account.as_str());
    Ok(Json(app.store.list_api_tokens(owner, page).await?))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = ApiTokenRequest)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A name to recognise it by.
    pub name: String,
    /// Its role; the creator's own when absent, never higher.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Days until it expires; never when absent (unless the server sets a maximum).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/tokens", request_body = TokenRequest, responses((status = 201, description = "The token; its secret is not shown again", body = IssuedToken), (status = 403, body = crate::api::error::ErrorBody)))]
/// Creates an API token for oneself.
pub async fn create(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let mut owner = app.store.get_account(&actor.account).await?;
    // A token may not mint a token above its own role.
    owner.role = owner.role.min(actor.role);
    let role = body.role.unwrap_or(owner.role);
    let issued =
        signin::issue_api_token(&app, &owner, &body.name, role, body.expires_in_days).await?;
    let summary = serde_json::json!({ "name": issued.name, "role": issued.role, "expires_at": issued.expires_at });
    app.auditor
        .succeeded(
            &actor,
            "api_token.create",
            format!("api-token/{}", issued.token_id),
            summary,
        )
        .await;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", responses((status = 204, description = "Revoked"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Revokes an API token (one's own; an admin's any).
pub async fn revoke(
    State(app): State<App>,
    actor: Actor,
    Path(token_id): Path<String>,
) -> Result<StatusCode> {
    let token = app.store.get_api_token(&token_id).await?;
    if token.username != actor.account && actor.role != Role::Admin {
        // Not yours: answer as if it did not exist.
        return Err(Error::NotFound(format!("API token {token_id} not found")));
    }
    app.store
        .revoke_api_token(&token_id, Timestamp::now())
        .await?;
    let summary = serde_json::json!({ "name": token.name, "owner": token.username });
    app.auditor
        .succeeded(
            &actor,
            "api_token.revoke",
            format!("api-token/{token_id}"),
            summary,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
