//! The command-signing keys: current, next (during a rotation) and retiring.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::ids::KeyId;
use utoipa::ToSchema;

/// The keys as `tutti keys status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeysStatus {
    /// The key commands and fleet values are signed with.
    pub current: KeyId,
    /// The next key, during a rotation.
    pub next: Option<NextKeyStatus>,
    /// Keys that signed before the last switch and are still trusted until their time.
    pub retiring: Vec<RetiringKeyStatus>,
}

/// The next key of a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NextKeyStatus {
    /// Its id.
    pub key_id: KeyId,
    /// When `tutti keys rotate` created it.
    pub introduced_at: Timestamp,
    /// When it becomes the signing key.
    pub activates_at: Timestamp,
}

/// A retiring key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetiringKeyStatus {
    /// Its id.
    pub key_id: KeyId,
    /// When agents stop trusting it.
    pub trusted_until: Timestamp,
}

/// The keys, and how far the next key has reached the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeysView {
    /// The keys.
    #[serde(flatten)]
    pub keys: KeysStatus,
    /// Enrolled agents whose last heartbeat listed the next key as trusted; `null` without
    /// a rotation in progress.
    pub next_trusted_by: Option<u64>,
    /// Enrolled agents.
    pub agents_enrolled: u64,
}
