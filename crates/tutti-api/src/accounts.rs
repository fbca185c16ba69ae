//! Accounts and API tokens as clients see them: never a hash or a secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::role::Role;
use utoipa::ToSchema;

/// A stored account, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// Sign-in name.
    pub username: String,
    /// What the account may do.
    pub role: Role,
    /// A disabled account cannot sign in, and its sessions and API tokens are refused.
    pub disabled: bool,
    /// Whether the next sign-in must set a new password.
    pub must_change_password: bool,
    /// Whether TOTP is confirmed (a secret is set, not only pending).
    pub mfa_enabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Last change to the row: role, disabled flag, password or MFA.
    pub updated_at: Timestamp,
    /// When the password was last set.
    pub password_changed_at: Timestamp,
}

/// A stored API token (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    /// Public id.
    pub token_id: String,
    /// Label.
    pub name: String,
    /// The owning account.
    pub username: String,
    /// The role it was created with.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// Expiry; `None` never expires.
    pub expires_at: Option<Timestamp>,
    /// Last successful authentication.
    pub last_used_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// A token just issued. The secret is in this response only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    /// Public id, for lists and revocation.
    pub token_id: String,
    /// The secret: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it stops working; never when absent.
    pub expires_at: Option<Timestamp>,
}

/// An account with the password it was given, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountWithPassword {
    /// The account.
    pub account: Account,
    /// The generated password; absent when the request chose one.
    pub initial_password: Option<String>,
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The account.
    pub account: Account,
    /// The effective role of this request (a token's may be lower than the account's).
    pub role: Role,
    /// `session` or `token`.
    pub via: SignedInVia,
    /// For a session: the token to send in `x-csrf-token` on every state-changing request.
    pub csrf_token: Option<String>,
    /// What the account must do before anything else, if anything.
    pub required_action: Option<RequiredAction>,
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignedInVia {
    /// The dashboard's session cookie.
    Session,
    /// An API token.
    Token,
}

/// What an account must do before it may do anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAction {
    /// Change the password (`tutti passwd`).
    ChangePassword,
    /// Set up two-factor sign-in (an admin, when the server requires it).
    SetupMfa,
}
