//! Enrollment tokens. The server hashes the secret; the store keeps only the hash.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::GroupName;

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    /// Public id, shown in lists.
    pub token_id: String,
    /// Hash of the secret.
    pub token_hash: String,
    /// Operator's label.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// After this instant it no longer enrolls.
    pub expires_at: Timestamp,
    /// How many enrollments it allows.
    pub uses: u32,
    /// Groups an agent enrolled with it joins, in configuration-layer order.
    pub groups: Vec<GroupName>,
}

/// A stored token (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
