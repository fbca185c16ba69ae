//! Enrollment tokens as listed: never the secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::GroupName;
use tutti_proto::ids::KeyId;
use utoipa::ToSchema;

/// A stored token (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentToken {
    /// Public id.
    pub token_id: String,
    /// Label.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Enrollments left.
    pub uses_left: u32,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Groups an agent enrolled with it joins.
    pub groups: Vec<GroupName>,
}

/// A new token with its secret, returned once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Public id.
    pub token_id: String,
    /// The secret to give `tutti-agent enroll --token`. Not retrievable later.
    pub token: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Enrollments allowed.
    pub uses: u32,
    /// Groups an agent enrolled with it joins.
    pub groups: Vec<GroupName>,
    /// The server's command-signing key id, to pin with `tutti-agent enroll
    /// --server-key-id`.
    pub server_key_id: KeyId,
    /// Whether this server serves `/install.sh` (it has agent binaries to hand out).
    pub install_script: bool,
    /// The server's URL from its `public_url` setting, if set (install commands use it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}
