//! `/api/v1/accounts` (admin): list, create, change role or disable, reset a password.
//!
//! Disabling takes effect on the account's next request: sessions and tokens are checked
//! against the account on every request, and a disabled account's sessions are deleted
//! when next seen. A reset password is random, shown once, and must be changed at the
//! next sign-in; it ends the account's sessions.

use std::fmt;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;
use tutti_proto::role::Role;
use tutti_store::{Account, AccountUpdate, NewAccount, Paged};

use crate::actor::Actor;
use crate::api::PageParams;
use crate::api::json::{ApiJson, ApiQuery};
use crate::app::App;
use crate::auth::{parse_username, password};
use crate::error::{Error, Result};
pub use tutti_api::accounts::AccountWithPassword;

#[utoipa::path(get, path = "/api/v1/accounts", params(PageParams), responses((status = 200, description = "Accounts by name (never their secrets)", body = tutti_api::Paged<tutti_api::accounts::Account>)))]
/// Lists accounts.
pub async fn list(
    State(app): State<App>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Paged<Account>>> {
    Ok(Json(app.store.list_accounts(params.page()).await?))
}

/// Body of `POST /api/v1/accounts`.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// Account name: 1–64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// `viewer`, `operator` or `admin`.
    #[schema(value_type = String)]
    pub role: Role,
    /// An initial password; when absent one is generated and returned. Either way it must
    /// be changed at first sign-in.
    #[serde(default)]
    pub password: Option<String>,
}

impl fmt::Debug for NewAccountRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccountRequest")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[utoipa::path(post, path = "/api/v1/accounts", request_body = NewAccountRequest, responses((status = 201, description = "Created", body = AccountWithPassword), (status = 409, body = crate::api::error::ErrorBody)))]
/// Creates an account.
pub async fn create(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<NewAccountRequest>,
) -> Result<(StatusCode, Json<AccountWithPassword>)> {
    let username = parse_username(&body.username)?;
    let (initial, generated) = match body.password {
        Some(chosen) => {
            password::check_policy(&chosen)?;
            (chosen, None)
        }
        None => {
            let generated = password::generate();
            (generated.clone(), Some(generated))
        }
    };
    let now = Timestamp::now();
    app.store
        .create_account(NewAccount {
            username: username.clone(),
            password_hash: password::hash(initial).await?,
            role: body.role,
            must_change_password: true,
            created_at: now,
            created_by: actor.name.clone(),
        })
        .await?;
    let account = app.store.get_account(&username).await?;
    app.auditor
        .succeeded(
            &actor,
            "account.create",
            format!("account/{username}"),
            serde_json::json!({ "role": body.role }),
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(AccountWithPassword {
            account,
            initial_password: generated,
        }),
    ))
}

/// Body of `PATCH /api/v1/accounts/{username}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// A new role.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Disable (true) or enable (false).
    #[serde(default)]
    pub disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/accounts/{username}", request_body = AccountPatch, responses((status = 200, description = "The updated account", body = tutti_api::accounts::Account), (status = 404, body = crate::api::error::ErrorBody), (status = 409, description = "An admin may not disable or demote their own account", body = crate::api::error::ErrorBody)))]
/// Changes an account's role or disables it (effective on its next request); a patch
/// without either changes nothing.
pub async fn update(
    State(app): State<App>,
    actor: Actor,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<AccountPatch>,
) -> Result<Json<Account>> {
    let username = parse_username(&username)?;
    if body.role.is_none() && body.disabled.is_none() {
        // A patch that changes nothing is answered with the account as it is.
        return Ok(Json(app.store.get_account(&username).await?));
    }
    let demotes_self =
        body.role.is_some_and(|role| role != Role::Admin) || body.disabled == Some(true);
    if username == actor.account && demotes_self {
        return Err(Error::Conflict(
            "you cannot disable or demote your own account; ask another admin".into(),
        ));
    }
    let update = AccountUpdate {
        role: body.role,
        disabled: body.disabled,
    };
    let account = app
        .store
        .update_account(&username, update, Timestamp::now())
        .await?;
    if body.disabled == Some(true) {
        app.store.delete_sessions(&username, None).await?;
    }
    let summary = serde_json::json!({ "role": body.role, "disabled": body.disabled });
    app.auditor
        .succeeded(
            &actor,
            "account.update",
            format!("account/{username}"),
            summary,
        )
        .await;
    Ok(Json(account))
}

#[utoipa::path(post, path = "/api/v1/accounts/{username}/password-reset", responses((status = 200, description = "A new random password, shown once", body = AccountWithPassword), (status = 404, body = crate::api::error::ErrorBody)))]
/// Resets an account's password to a random one that must be changed at next sign-in.
pub async fn reset_password(
    State(app): State<App>,
    actor: Actor,
    Path(username): Path<String>,
) -> Result<Json<AccountWithPassword>> {
    let username = parse_username(&username)?;
    let generated = password::generate();
    let hash = password::hash(generated.clone()).await?;
    app.store
        .set_password(&username, hash, true, Timestamp::now())
        .await?;
    let ended = app.store.delete_sessions(&username, None).await?;
    app.auditor
        .succeeded(
            &actor,
            "account.password_reset",
            format!("account/{username}"),
            serde_json::json!({ "sessions_ended": ended }),
        )
        .await;
    Ok(Json(AccountWithPassword {
        account: app.store.get_account(&username).await?,
        initial_password: Some(generated),
    }))
}
