//! The fleet at a glance, for the dashboard's overview page.

use serde::Serialize;

/// Agent liveness totals, breakdowns and recent failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetOverview {
    /// Every known agent.
    pub agents: u64,
    /// Agents with a heartbeat since the cut-off.
    pub online: u64,
    /// Agents whose last heartbeat is older.
    pub offline: u64,
    /// Agents that never sent one.
    pub never_seen: u64,
    /// `(os, agents)` of the most common OS names, largest first; an empty name means not
    /// reported yet.
    pub by_os: Vec<(String, u64)>,
    /// Agents whose OS is not among `by_os`.
    pub os_other: u64,
    /// `(agent version, agents)` of the most common versions, largest first.
    pub by_version: Vec<(String, u64)>,
    /// Agents whose version is not among `by_version`.
    pub version_other: u64,
    /// Targets that ended failed, timed out, killed or interrupted since the window start.
    pub failed_targets: u64,
    /// Distinct agents among them.
    pub failed_agents: u64,
}
