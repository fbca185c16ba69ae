//! Enrollment tokens as listed: never the secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::GroupName;
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
