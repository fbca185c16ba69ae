//! Operator accounts, browser sessions, MFA recovery codes and API tokens.
//!
//! The server makes every hash (argon2id for passwords, sha256 for session cookies,
//! recovery codes and API tokens) and checks every secret; the store keeps what it is given
//! and answers lookups. Types returned to API clients derive `Serialize` and hold no hash or
//! secret; the types that do carry one print it as `<redacted>` in `Debug`, so a stray
//! `{:?}` in a log line leaks nothing.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;
pub use tutti_api::accounts::{Account, ApiToken};
use tutti_proto::role::Role;

/// An account to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Sign-in name, unique.
    pub username: String,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// Whether the next sign-in must set a new password.
    pub must_change_password: bool,
    /// When it was created; also its first `updated_at` and `password_changed_at`.
    pub created_at: Timestamp,
    /// Who created it (a username, or `bootstrap` for the first admin).
    pub created_by: String,
}

/// An account with the secrets a sign-in checks.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountCredentials {
    /// The account.
    pub account: Account,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Base32 TOTP secret; `None` while MFA is off.
    pub totp_secret: Option<String>,
    /// A TOTP secret being enrolled, not yet confirmed by a code.
    pub totp_pending: Option<String>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// A new role.
    pub role: Option<Role>,
    /// Disable (`true`) or re-enable (`false`) the account.
    pub disabled: Option<bool>,
}

/// A browser session to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// sha256 hex of the cookie value.
    pub session_hash: String,
    /// The account signed in.
    pub username: String,
    /// When it was created; also its first `last_seen_at`.
    pub created_at: Timestamp,
    /// Absolute end of the session, however active it is.
    pub expires_at: Timestamp,
    /// Where the sign-in came from, when known.
    pub source: Option<String>,
    /// Whether the second factor was already checked.
    pub mfa_passed: bool,
}

/// A live session joined with its account's current state, so a role change or a disable
/// takes effect on the next request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The account signed in.
    pub username: String,
    /// The account's current role.
    pub role: Role,
    /// Whether the account is disabled now.
    pub disabled: bool,
    /// Whether the account must set a new password before doing anything else.
    pub must_change_password: bool,
    /// Whether the account has TOTP enabled.
    pub mfa_enabled: bool,
    /// When the session was created.
    pub created_at: Timestamp,
    /// Absolute end of the session.
    pub expires_at: Timestamp,
    /// Last request seen with this session.
    pub last_seen_at: Timestamp,
    /// Whether the second factor was checked for this session.
    pub mfa_passed: bool,
}

/// An API token to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Public id, shown in lists.
    pub token_id: String,
    /// sha256 hex of the secret.
    pub token_hash: String,
    /// Owner's label; names may repeat.
    pub name: String,
    /// The owning account.
    pub username: String,
    /// The most the token may do; the server also caps it at the owner's current role.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// After this instant it is refused; `None` never expires.
    pub expires_at: Option<Timestamp>,
}

/// A valid token with its owner's current state, so the server can refuse the token of a
/// disabled owner and cap the token's role at the owner's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuth {
    /// The token, with `last_used_at` set to the authentication time.
    pub token: ApiToken,
    /// Whether the owner is disabled now.
    pub owner_disabled: bool,
    /// The owner's current role.
    pub owner_role: Role,
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `Some(<redacted>)` or `None`: whether a secret is set is useful, the secret is not.
fn redact_opt(secret: &Option<String>) -> Option<Redacted> {
    secret.as_ref().map(|_| Redacted)
}

impl fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccount")
            .field("username", &self.username)
            .field("password_hash", &Redacted)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .field("created_at", &self.created_at)
            .field("created_by", &self.created_by)
            .finish()
    }
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account", &self.account)
            .field("password_hash", &Redacted)
            .field("totp_secret", &redact_opt(&self.totp_secret))
            .field("totp_pending", &redact_opt(&self.totp_pending))
            .finish()
    }
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("session_hash", &Redacted)
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("source", &self.source)
            .field("mfa_passed", &self.mfa_passed)
            .finish()
    }
}

impl fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("token_id", &self.token_id)
            .field("token_hash", &Redacted)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
