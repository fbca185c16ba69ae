//! Fleet-wide state as the API shows it: configuration layers and the freeze.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::config::AgentConfig;
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

/// One configuration layer as an operator writes it; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// Seconds between heartbeats.
    pub heartbeat_interval_secs: Option<u64>,
    /// Seconds between inventory snapshots.
    pub inventory_interval_secs: Option<u64>,
    /// Runs executed at the same time.
    pub concurrency: Option<u32>,
    /// Agent log filter.
    pub log_level: Option<String>,
    /// Output cap per stream.
    pub output_limit_bytes: Option<u64>,
    /// Output up to this size travels inline.
    pub inline_output_limit_bytes: Option<u64>,
}

impl From<ConfigLayer> for AgentConfig {
    fn from(layer: ConfigLayer) -> AgentConfig {
        AgentConfig {
            heartbeat_interval_secs: layer.heartbeat_interval_secs,
            inventory_interval_secs: layer.inventory_interval_secs,
            concurrency: layer.concurrency,
            log_level: layer.log_level,
            output_limit_bytes: layer.output_limit_bytes,
            inline_output_limit_bytes: layer.inline_output_limit_bytes,
        }
    }
}
