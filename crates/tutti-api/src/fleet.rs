//! The fleet freeze as the API shows it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::fleet::FleetFreeze;
use utoipa::ToSchema;

/// Longest accepted reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The freeze as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FreezeState {
    /// Whether the stored value says frozen (it may have passed its `until`).
    pub frozen: bool,
    /// Whether the freeze holds now: frozen, and `until` absent or still ahead.
    pub in_force: bool,
    /// When it ends by itself; `null` for a freeze until lifted.
    pub until: Option<Timestamp>,
    /// Why it was frozen; `null` when lifted or never set.
    pub reason: Option<String>,
    /// Who last changed it; `null` when it was never set.
    pub actor: Option<String>,
    /// When it last changed; `null` when it was never set.
    pub at: Option<Timestamp>,
}

impl FreezeState {
    /// The state of a stored freeze (or none) at `now`.
    pub fn of(freeze: Option<&FleetFreeze>, now: Timestamp) -> FreezeState {
        let Some(freeze) = freeze else {
            return FreezeState {
                frozen: false,
                in_force: false,
                until: None,
                reason: None,
                actor: None,
                at: None,
            };
        };
        FreezeState {
            frozen: freeze.frozen,
            in_force: freeze.in_force(now),
            until: freeze.until,
            reason: Some(freeze.reason.clone()).filter(|reason| !reason.is_empty()),
            actor: Some(freeze.actor.clone()).filter(|actor| !actor.is_empty()),
            at: Some(freeze.at),
        }
    }
}
