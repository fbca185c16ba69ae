//! Enrollment tokens. The server hashes the secret; the store keeps only the hash.

use jiff::Timestamp;
pub use tutti_api::tokens::EnrollmentToken;
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
