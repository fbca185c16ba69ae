//! Signing in: checking a password (and a second factor), opening a session, issuing an
//! API token, resolving a session or token back into an [`Actor`], and creating the first
//! admin at first start.
//!
//! Every failure to sign in answers the same `wrong username or password`, whether the
//! account is unknown, disabled or the password wrong, and costs the same argon2 work.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use tutti_proto::audit::AuditOutcome;
use tutti_proto::role::Role;
use tutti_store::{Account, NewAccount, NewApiToken, NewSession, SessionInfo, Store, StoreError};

use super::{FIRST_ADMIN, INITIAL_PASSWORD_FILE, parse_username, password, secret};
use crate::actor::{Actor, Credential};
use crate::app::App;
use crate::error::{Error, Result};

/// The longest lifetime an API token may ask for, in days (a century).
pub const MAX_TOKEN_DAYS: u32 = 36_500;

// The answers a client recognises by their words live with the API's types.
pub use tutti_api::accounts::IssuedToken;
pub use tutti_api::errors::{
    CODE_REQUIRED, MFA_SETUP_REQUIRED, PASSWORD_CHANGE_REQUIRED, WRONG_CREDENTIALS,
};

/// Checks a username, password and optional one-time code; the account on success.
pub async fn check_credentials(
    app: &App,
    username: &str,
    password_text: &str,
    code: Option<&str>,
    source: Option<&str>,
) -> Result<Account> {
    let auth = &app.auth;
    let attempted = username.trim().to_lowercase();
    if let Some(wait) = auth.throttle().locked(&attempted, source, Instant::now()) {
        let target = format!("account/{attempted}");
        let reason = serde_json::json!({ "reason": "locked out" });
        app.auditor
            .unauthenticated(
                &attempted,
                source.map(str::to_string),
                "auth.login",
                target,
                reason,
                AuditOutcome::Denied,
            )
            .await;
        return Err(locked_out(wait.as_secs()));
    }
    let credentials = match parse_username(username) {
        Ok(name) => match app.store.account_credentials(&name).await {
            Ok(credentials) => Some(credentials),
            Err(StoreError::NotFound(_)) => None,
            Err(err) => return Err(err.into()),
        },
        Err(_) => None,
    };
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let password_ok = password::verify(password_text.to_string(), stored_hash).await;
    let credentials = match credentials {
        Some(credentials) if password_ok && !credentials.account.disabled => credentials,
        _ => return Err(failed(app, &attempted, source, "auth.login").await),
    };
    if let Some(totp_secret) = &credentials.totp_secret {
        let Some(code) = code.filter(|code| !code.trim().is_empty()) else {
            return Err(Error::Unauthorized(CODE_REQUIRED.into()));
        };
        if !second_factor_ok(app, &credentials.account.username, totp_secret, code).await? {
            return Err(failed(app, &attempted, source, "auth.second_factor").await);
        }
    }
    auth.throttle().succeeded(&attempted);
    Ok(credentials.account)
}

/// A TOTP code, or else an unused recovery code (which is used up).
async fn second_factor_ok(
    app: &App,
    username: &str,
    totp_secret: &str,
    code: &str,
) -> Result<bool> {
    let unix_secs = u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
    if app.auth.check_totp(username, totp_secret, code, unix_secs) {
        return Ok(true);
    }
    let used = app
        .store
        .use_recovery_code(
            username,
            &secret::hash_recovery_code(code),
            Timestamp::now(),
        )
        .await?;
    Ok(used)
}

async fn failed(app: &App, attempted: &str, source: Option<&str>, action: &str) -> Error {
    let lockout = app
        .auth
        .throttle()
        .failed(attempted, source, Instant::now());
    app.auditor
        .unauthenticated(
            attempted,
            source.map(str::to_string),
            action,
            format!("account/{attempted}"),
            serde_json::Value::Null,
            AuditOutcome::Failed,
        )
        .await;
    match lockout {
        Some(wait) => locked_out(wait.as_secs()),
        None => Error::Unauthorized(WRONG_CREDENTIALS.into()),
    }
}

fn locked_out(retry_after_secs: u64) -> Error {
    Error::TooManyRequests {
        message: format!(
            "too many failed sign-ins: try again in {} minute(s)",
            retry_after_secs.div_ceil(60).max(1)
        ),
        retry_after_secs,
    }
}

/// A session just opened: the cookie to set and the CSRF token the dashboard sends back.
#[derive(Debug)]
pub struct OpenedSession {
    /// The `Set-Cookie` value.
    pub cookie: axum::http::HeaderValue,
    /// The CSRF token of the session.
    pub csrf_token: String,
}

/// Opens a dashboard session for a signed-in account.
pub async fn open_session(
    app: &App,
    account: &Account,
    source: Option<String>,
) -> Result<OpenedSession> {
    let (cookie_value, session_hash) = app.auth.new_session();
    let now = Timestamp::now();
    let ttl = secs(app.auth.config().session_ttl_secs);
    app.store
        .create_session(NewSession {
            session_hash: session_hash.clone(),
            username: account.username.clone(),
            created_at: now,
            expires_at: now.checked_add(ttl).unwrap_or(Timestamp::MAX),
            source,
            mfa_passed: true,
        })
        .await?;
    Ok(OpenedSession {
        cookie: app.auth.session_cookie(&cookie_value),
        csrf_token: app.auth.csrf_token(&session_hash),
    })
}

/// Issues an API token for `owner` with `role` (at most the owner's role) that expires
/// after `expires_in_days` (never when `None`, if the configuration allows it).
pub async fn issue_api_token(
    app: &App,
    owner: &Account,
    name: &str,
    role: Role,
    expires_in_days: Option<u32>,
) -> Result<IssuedToken> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::bad_request(
            "token name must be 1 to 100 characters long",
        ));
    }
    if !owner.role.allows(role) {
        return Err(Error::Forbidden(format!(
            "a token's role cannot exceed its owner's: {} is {}, not {role}",
            owner.username, owner.role
        )));
    }
    let max_days = app.auth.config().api_token_max_days;
    let days = match (expires_in_days, max_days) {
        (Some(0), _) => return Err(Error::bad_request("expires_in_days must be at least 1")),
        (Some(days), _) if days > MAX_TOKEN_DAYS => {
            return Err(Error::bad_request(format!(
                "expires_in_days must be at most {MAX_TOKEN_DAYS} (a century); leave it out for a token that does not expire"
            )));
        }
        (Some(days), 0) => Some(days),
        (Some(days), max) if days <= max => Some(days),
        (Some(_), max) | (None, max @ 1..) => {
            return Err(Error::bad_request(format!(
                "expires_in_days must be at most {max} (auth.api_token_max_days)"
            )));
        }
        (None, _) => None,
    };
    let now = Timestamp::now();
    let expires_at = days.map(|days| {
        now.checked_add(secs(u64::from(days) * 86_400))
            .unwrap_or(Timestamp::MAX)
    });
    let token = secret::new_api_token();
    let token_id = secret::random_hex(8);
    app.store
        .create_api_token(NewApiToken {
            token_id: token_id.clone(),
            token_hash: secret::hash(&token),
            name: name.to_string(),
            username: owner.username.clone(),
            role,
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(IssuedToken {
        token_id,
        token,
        name: name.to_string(),
        role,
        expires_at,
    })
}

/// The actor behind a bearer token.
pub async fn actor_from_token(app: &App, token: &str, source: Option<String>) -> Result<Actor> {
    let found = app
        .store
        .authenticate_api_token(&secret::hash(token), Timestamp::now())
        .await;
    let auth = match found {
        Ok(auth) => auth,
        Err(StoreError::NotFound(_)) => {
            return Err(Error::Unauthorized(
                "the API token is unknown, expired or revoked: create a new one (tutti login)"
                    .into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if auth.owner_disabled {
        return Err(Error::Unauthorized(
            "the token's account is disabled".into(),
        ));
    }
    let token = auth.token;
    Ok(Actor {
        name: format!("{}/{}", token.username, token.name),
        account: token.username,
        role: token.role.min(auth.owner_role),
        source,
        credential: Credential::Token {
            token_id: token.token_id,
        },
    })
}

/// The actor behind a session cookie, with the session's state.
pub async fn actor_from_session(
    app: &App,
    cookie: &str,
    source: Option<String>,
) -> Result<(Actor, SessionInfo)> {
    let expired = || Error::Unauthorized("the session has ended: sign in again".into());
    let session_hash = app.auth.session_hash(cookie).ok_or_else(expired)?;
    let now = Timestamp::now();
    let session = match app.store.get_session(&session_hash, now).await {
        Ok(session) => session,
        Err(StoreError::NotFound(_)) => return Err(expired()),
        Err(err) => return Err(err.into()),
    };
    let idle = secs(app.auth.config().session_idle_secs);
    let idle_too_long = session
        .last_seen_at
        .checked_add(idle)
        .is_ok_and(|until| until <= now);
    if session.disabled || idle_too_long {
        app.store.delete_session(&session_hash).await?;
        return Err(expired());
    }
    // Touch at most once a minute (or twice per idle limit, if that is shorter): idle
    // expiry needs no finer grain, and it keeps most reads from turning into writes.
    let touch_every = SignedDuration::from_secs(60).min(idle / 2);
    if session
        .last_seen_at
        .checked_add(touch_every)
        .is_ok_and(|at| at <= now)
    {
        app.store.touch_session(&session_hash, now).await?;
    }
    let actor = Actor {
        name: session.username.clone(),
        account: session.username.clone(),
        role: session.role,
        source,
        credential: Credential::Session { session_hash },
    };
    Ok((actor, session))
}

/// Creates the first admin when there is no account: a random password, printed once on
/// standard error and written to `initial-admin-password` (mode 0600) in the data
/// directory, which must be changed at first sign-in. Returns the password when it did.
pub async fn bootstrap_first_admin(
    store: &Store,
    data_dir: &Path,
) -> anyhow::Result<Option<String>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let initial = password::generate();
    let hash = password::hash(initial.clone())
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    write_private(&path, &format!("{initial}\n"))?;
    store
        .create_account(NewAccount {
            username: FIRST_ADMIN.to_string(),
            password_hash: hash,
            role: Role::Admin,
            must_change_password: true,
            created_at: Timestamp::now(),
            created_by: "tutti-server".to_string(),
        })
        .await?;
    tracing::info!(username = FIRST_ADMIN, path = %path.display(), "Created the first account; its password is in the file.");
    Ok(Some(initial))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn secs(n: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(n).unwrap_or(i64::MAX))
}
