//! Agents, their groups and liveness.

use jiff::Timestamp;
use tutti_proto::{AgentId, GroupName};

use crate::page::{Page, SortDir};
pub use tutti_api::agents::{Agent, Group, HeartbeatStats, Liveness};

/// An agent as enrolled by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// Its id.
    pub agent_id: AgentId,
    /// Hostname it reported at enrollment.
    pub hostname: String,
    /// OS name, e.g. `Ubuntu`.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Agent version.
    pub version: String,
    /// When it enrolled.
    pub enrolled_at: Timestamp,
    /// The public NATS user key the agent generated, when the server issues per-agent broker
    /// identities; recorded in the enrolling transaction, so a reused key enrolls nothing.
    pub broker_public_key: Option<String>,
}

/// Sort key of the agents list; ties break on the agent id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AgentSort {
    /// By id.
    #[default]
    Id,
    /// By hostname.
    Hostname,
    /// By last heartbeat (agents that never sent one sort last either way).
    LastHeartbeat,
    /// By enrollment time.
    EnrolledAt,
}

/// Filter, sort and page of the agents list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentQuery {
    /// Heartbeats older than this count as offline (the caller's now minus its threshold).
    pub online_since: Timestamp,
    /// Only agents with this liveness.
    pub liveness: Option<Liveness>,
    /// Only members of this group.
    pub group: Option<GroupName>,
    /// Only this OS name (exact, case-insensitive).
    pub os: Option<String>,
    /// Substring of the id or hostname (case-insensitive).
    pub search: Option<String>,
    /// Sort key.
    pub sort: AgentSort,
    /// Sort direction.
    pub dir: SortDir,
    /// Which rows.
    pub page: Page,
}

impl AgentQuery {
    /// Every agent, sorted by id, first page.
    pub fn all(online_since: Timestamp) -> Self {
        AgentQuery {
            online_since,
            liveness: None,
            group: None,
            os: None,
            search: None,
            sort: AgentSort::Id,
            dir: SortDir::Asc,
            page: Page::default(),
        }
    }
}
