//! `/api/v1/enrollment-tokens`: create (the secret is shown once), list, revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use tutti_store::{EnrollmentToken, Paged};

use crate::actor::Actor;
use crate::api::PageParams;
use crate::api::json::{ApiJson, ApiQuery};
use crate::app::App;
use crate::error::Result;
use crate::tokens::{self, CreatedToken, TokenRequest};

#[utoipa::path(post, path = "/api/v1/enrollment-tokens", request_body = TokenRequest, responses((status = 201, description = "The token; its secret is not shown again", body = CreatedToken), (status = 400, body = crate::api::error::ErrorBody)))]
/// Creates an enrollment token.
pub async fn create(
    State(app): State<App>,
    actor: Actor,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    let name = request.name.clone();
    let created = tokens::create(&app, request, &actor).await?;
    let summary = serde_json::json!({
        "name": name, "uses": created.uses, "expires_at": created.expires_at,
        "groups": created.groups,
    });
    app.auditor
        .succeeded(
            &actor,
            "enrollment_token.create",
            format!("enrollment-token/{}", created.token_id),
            summary,
        )
        .await;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/enrollment-tokens", params(PageParams), responses((status = 200, description = "Tokens, newest first (never their secrets)", body = tutti_api::Paged<tutti_api::tokens::EnrollmentToken>)))]
/// Lists enrollment tokens.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<EnrollmentToken>>> {
    Ok(Json(app.store.list_enrollment_tokens(params.page()).await?))
}

#[utoipa::path(delete, path = "/api/v1/enrollment-tokens/{token_id}", responses((status = 204, description = "Revoked"), (status = 404, body = crate::api::error::ErrorBody)))]
/// Revokes an enrollment token.
pub async fn revoke(
    State(app): State<App>,
    actor: Actor,
    Path(token_id): Path<String>,
) -> Result<StatusCode> {
    app.store
        .revoke_enrollment_token(&token_id, Timestamp::now())
        .await?;
    app.auditor
        .succeeded(
            &actor,
            "enrollment_token.revoke",
            format!("enrollment-token/{token_id}"),
            serde_json::Value::Null,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
