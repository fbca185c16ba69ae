//! The body of every error answer, and the answers a client acts on by their words.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `not_found`, `conflict`, ...
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The one answer to a failed sign-in.
pub const WRONG_CREDENTIALS: &str = "wrong username or password";

/// The answer of `POST /api/v1/auth/token` for an account that must change its password:
/// the CLI matches it to ask for a new one.
pub const PASSWORD_CHANGE_REQUIRED: &str =
    "this account must change its password first: send it as `new_password`";

/// The answer of `POST /api/v1/auth/token` for an admin who must set up two-factor
/// sign-in first (`auth.require_mfa_for_admins`).
pub const MFA_SETUP_REQUIRED: &str = "admins must set up two-factor sign-in first (in the dashboard, or POST /api/v1/auth/mfa/setup) before using an API token";

/// The answer when the password was right but a second factor is needed; the CLI matches
/// it to ask for the code.
pub const CODE_REQUIRED: &str = "this account uses two-factor sign-in: send the 6-digit code from the authenticator app (or a recovery code) as `code`";
