//! `/api/v1/auth`: signing in and out, one's own password and two-factor sign-in.
//!
//! `login` opens a dashboard session (an HttpOnly cookie plus a CSRF token the page sends
//! back in `x-csrf-token`); `token` trades the same credentials for an API token, which is
//! how `tutti login` signs the CLI in. Both go through the same checks and throttle.

use std::fmt;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::role::Role;
use tutti_store::Account;

use crate::actor::{Actor, ClientAddr, Credential};
use crate::api::json::ApiJson;
use crate::app::App;
use crate::auth::signin::{self, IssuedToken};
use crate::auth::{password, secret, totp};
use crate::error::{Error, Result};
pub use tutti_api::accounts::{Me, RequiredAction, SignedInVia};

/// Body of `POST /api/v1/auth/login` and `POST /api/v1/auth/token`.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
    /// A 6-digit TOTP code or a recovery code, for accounts with two-factor sign-in.
    #[serde(default)]
    pub code: Option<String>,
    /// `token` only: a name for the issued token (default `cli`).
    #[serde(default)]
    pub token_name: Option<String>,
    /// `token` only: days until the token expires (default 30).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// `token` only: the new password, for an account that must change its password.
    #[serde(default)]
    pub new_password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("token_name", &self.token_name)
            .finish_non_exhaustive()
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", request_body = Credentials, responses((status = 200, description = "Signed in; the session cookie is set", body = Me), (status = 401, body = crate::api::error::ErrorBody), (status = 429, body = crate::api::error::ErrorBody)))]
/// Signs in to the dashboard.
pub async fn login(
    State(app): State<App>,
    ClientAddr(source): ClientAddr,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response> {
    let account = signin::check_credentials(
        &app,
        &body.username,
        &body.password,
        body.code.as_deref(),
        source.as_deref(),
    )
    .await?;
    let session = signin::open_session(&app, &account, source.clone()).await?;
    let actor = account_actor(&account, source);
    audit_own(&app, &actor, "auth.login", serde_json::Value::Null).await;
    let me = Me {
        role: account.role,
        via: SignedInVia::Session,
        csrf_token: Some(session.csrf_token),
        required_action: required_action(&app, &account),
        account,
    };
    Ok(([(header::SET_COOKIE, session.cookie)], Json(me)).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/token", request_body = Credentials, responses((status = 201, description = "An API token for the account; shown once", body = IssuedToken), (status = 401, body = crate::api::error::ErrorBody), (status = 403, body = crate::api::error::ErrorBody)))]
/// Signs in and issues an API token (what `tutti login` does).
pub async fn token(
    State(app): State<App>,
    ClientAddr(source): ClientAddr,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let mut account = signin::check_credentials(
        &app,
        &body.username,
        &body.password,
        body.code.as_deref(),
        source.as_deref(),
    )
    .await?;
    let actor = account_actor(&account, source);
    if account.must_change_password {
        let Some(new_password) = &body.new_password else {
            return Err(Error::Forbidden(signin::PASSWORD_CHANGE_REQUIRED.into()));
        };
        change_password(
            &app,
            &actor,
            &account.username,
            &body.password,
            new_password,
            None,
        )
        .await?;
        account.must_change_password = false;
    }
    if required_action(&app, &account).is_some() {
        // The password was changed above, so what is left to do is the MFA setup.
        return Err(Error::Forbidden(signin::MFA_SETUP_REQUIRED.into()));
    }
    let name = body.token_name.as_deref().unwrap_or("cli");
    let issued = signin::issue_api_token(
        &app,
        &account,
        name,
        account.role,
        Some(body.expires_in_days.unwrap_or(30)),
    )
    .await?;
    let summary = serde_json::json!({ "name": issued.name, "role": issued.role, "expires_at": issued.expires_at });
    app.auditor
        .succeeded(
            &actor,
            "auth.token_login",
            format!("api-token/{}", issued.token_id),
            summary,
        )
        .await;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(get, path = "/api/v1/auth/me", responses((status = 200, description = "The signed-in account", body = Me), (status = 401, body = crate::api::error::ErrorBody)))]
/// Who is signed in, and the session's CSRF token.
pub async fn me(State(app): State<App>, actor: Actor) -> Result<Json<Me>> {
    let account = app.store.get_account(&actor.account).await?;
    let (via, csrf_token) = match &actor.credential {
        Credential::Session { session_hash } => (
            SignedInVia::Session,
            Some(app.auth.csrf_token(session_hash)),
        ),
        _ => (SignedInVia::Token, None),
    };
    Ok(Json(Me {
        role: actor.role,
        via,
        csrf_token,
        required_action: required_action(&app, &account),
        account,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", responses((status = 204, description = "Signed out; the cookie is cleared")))]
/// Ends this session.
pub async fn logout(State(app): State<App>, actor: Actor) -> Result<Response> {
    if let Credential::Session { session_hash } = &actor.credential {
        app.store.delete_session(session_hash).await?;
    }
    audit_own(&app, &actor, "auth.logout", serde_json::Value::Null).await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, app.auth.cleared_cookie())],
    )
        .into_response())
}

/// Answer of `POST /api/v1/auth/logout-all`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionsEnded {
    /// How many sessions ended, this one included.
    pub sessions_ended: u64,
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", responses((status = 200, description = "Every session of the account ended", body = SessionsEnded)))]
/// Ends every session of the account ("log out everywhere").
pub async fn logout_all(State(app): State<App>, actor: Actor) -> Result<Response> {
    let ended = app.store.delete_sessions(&actor.account, None).await?;
    audit_own(
        &app,
        &actor,
        "auth.logout_all",
        serde_json::json!({ "sessions": ended }),
    )
    .await;
    let body = Json(SessionsEnded {
        sessions_ended: ended,
    });
    Ok(([(header::SET_COOKIE, app.auth.cleared_cookie())], body).into_response())
}

/// Body of `POST /api/v1/auth/password`.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current_password: String,
    /// The new one (at least 12 characters).
    pub new_password: String,
}

impl fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordChange { <redacted> }")
    }
}

#[utoipa::path(post, path = "/api/v1/auth/password", request_body = PasswordChange, responses((status = 204, description = "Changed; other sessions ended"), (status = 400, body = crate::api::error::ErrorBody), (status = 401, body = crate::api::error::ErrorBody)))]
/// Changes one's own password; every other session of the account ends.
pub async fn password(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode> {
    let keep = match &actor.credential {
        Credential::Session { session_hash } => Some(session_hash.clone()),
        _ => None,
    };
    change_password(
        &app,
        &actor,
        &actor.account,
        &body.current_password,
        &body.new_password,
        keep,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password(
    app: &App,
    actor: &Actor,
    username: &str,
    current: &str,
    new: &str,
    keep_session: Option<String>,
) -> Result<()> {
    let credentials = app.store.account_credentials(username).await?;
    if !password::verify(current.to_string(), Some(credentials.password_hash)).await {
        return Err(Error::Unauthorized("the current password is wrong".into()));
    }
    password::check_policy(new)?;
    if new == current {
        return Err(Error::bad_request(
            "the new password must differ from the current one",
        ));
    }
    let hash = password::hash(new.to_string()).await?;
    app.store
        .set_password(username, hash, false, Timestamp::now())
        .await?;
    let ended = app.store.delete_sessions(username, keep_session).await?;
    let summary = serde_json::json!({ "other_sessions_ended": ended });
    audit_own(app, actor, "auth.password_change", summary).await;
    Ok(())
}

/// Answer of `POST /api/v1/auth/mfa/setup`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaSetup {
    /// The secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// The same as an `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/setup", responses((status = 200, description = "A new secret, active once confirmed with a code", body = MfaSetup), (status = 409, body = crate::api::error::ErrorBody)))]
/// Starts two-factor enrolment: a new TOTP secret, pending until confirmed.
pub async fn mfa_setup(State(app): State<App>, actor: Actor) -> Result<Json<MfaSetup>> {
    let account = app.store.get_account(&actor.account).await?;
    if account.mfa_enabled {
        return Err(Error::Conflict(
            "two-factor sign-in is already on; disable it first".into(),
        ));
    }
    let secret = totp::generate_secret();
    app.store
        .set_totp_pending(&actor.account, Some(secret.clone()), Timestamp::now())
        .await?;
    let otpauth_url = totp::provisioning_url("tutti", &actor.account, &secret);
    Ok(Json(MfaSetup {
        secret,
        otpauth_url,
    }))
}

/// Body of `POST /api/v1/auth/mfa/confirm`.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaCode {
    /// A current 6-digit code.
    pub code: String,
}

impl fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaCode { <redacted> }")
    }
}

/// Answer of `POST /api/v1/auth/mfa/confirm`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes for when the authenticator is lost. Shown once.
    pub recovery_codes: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/confirm", request_body = MfaCode, responses((status = 200, description = "Two-factor sign-in is on", body = RecoveryCodes), (status = 400, body = crate::api::error::ErrorBody), (status = 403, description = "The code does not match", body = crate::api::error::ErrorBody), (status = 409, description = "No setup is pending", body = crate::api::error::ErrorBody)))]
/// Confirms two-factor enrolment with a live code; returns the recovery codes.
pub async fn mfa_confirm(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<MfaCode>,
) -> Result<Json<RecoveryCodes>> {
    let credentials = app.store.account_credentials(&actor.account).await?;
    let Some(pending) = credentials.totp_pending else {
        return Err(Error::Conflict(
            "no two-factor setup is pending: POST /api/v1/auth/mfa/setup first".into(),
        ));
    };
    let now = u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
    if !app
        .auth
        .check_totp(&actor.account, &pending, &body.code, now)
    {
        // A well-formed code that proves nothing: refused like a wrong password, not as
        // malformed input.
        return Err(Error::Forbidden(
            "the code does not match: check the authenticator app's clock and try the next code"
                .into(),
        ));
    }
    let codes: Vec<String> = (0..10).map(|_| secret::new_recovery_code()).collect();
    let hashes = codes
        .iter()
        .map(|code| secret::hash_recovery_code(code))
        .collect();
    app.store
        .enable_totp(&actor.account, pending, hashes, Timestamp::now())
        .await?;
    audit_own(&app, &actor, "auth.mfa_enable", serde_json::Value::Null).await;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Body of `POST /api/v1/auth/mfa/disable`.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaDisable {
    /// The account's password.
    pub password: String,
}

impl fmt::Debug for MfaDisable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaDisable { <redacted> }")
    }
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/disable", request_body = MfaDisable, responses((status = 204, description = "Two-factor sign-in is off"), (status = 401, body = crate::api::error::ErrorBody)))]
/// Turns two-factor sign-in off (the password is asked again).
pub async fn mfa_disable(
    State(app): State<App>,
    actor: Actor,
    ApiJson(body): ApiJson<MfaDisable>,
) -> Result<StatusCode> {
    let credentials = app.store.account_credentials(&actor.account).await?;
    if !password::verify(body.password, Some(credentials.password_hash)).await {
        return Err(Error::Unauthorized("the password is wrong".into()));
    }
    app.store
        .disable_totp(&actor.account, Timestamp::now())
        .await?;
    audit_own(&app, &actor, "auth.mfa_disable", serde_json::Value::Null).await;
    Ok(StatusCode::NO_CONTENT)
}

/// What an account must do before anything else.
fn required_action(app: &App, account: &Account) -> Option<RequiredAction> {
    if account.must_change_password {
        return Some(RequiredAction::ChangePassword);
    }
    if app.auth.config().require_mfa_for_admins
        && account.role == Role::Admin
        && !account.mfa_enabled
    {
        return Some(RequiredAction::SetupMfa);
    }
    None
}

/// The actor for an account that just proved who it is.
fn account_actor(account: &Account, source: Option<String>) -> Actor {
    Actor {
        name: account.username.clone(),
        account: account.username.clone(),
        role: account.role,
        source,
        credential: Credential::System,
    }
}

/// Audits an action of `actor` on its own account.
async fn audit_own(app: &App, actor: &Actor, action: &str, summary: serde_json::Value) {
    let target = format!("account/{}", actor.account);
    app.auditor.succeeded(actor, action, target, summary).await;
}
