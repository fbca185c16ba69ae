//! Agents, their groups and liveness.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::{AgentId, GroupName};

use crate::page::{Page, SortDir};

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

/// Whether an agent is reachable, judged from its last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// A heartbeat at or after the caller's cut-off.
    Online,
    /// A heartbeat, but before the cut-off.
    Offline,
    /// No heartbeat ever.
    Never,
}

impl Liveness {
    /// Liveness of an agent whose last heartbeat was `last_heartbeat_at`, when heartbeats
    /// older than `online_since` count as offline.
    pub fn judge(last_heartbeat_at: Option<Timestamp>, online_since: Timestamp) -> Self {
        match last_heartbeat_at {
            None => Liveness::Never,
            Some(at) if at >= online_since => Liveness::Online,
            Some(_) => Liveness::Offline,
        }
    }
}

/// Figures from the agent's last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartbeatStats {
    /// Seconds since the agent process started.
    pub uptime_secs: u64,
    /// Resident memory of the agent.
    pub rss_bytes: u64,
    /// CPU use, percent of one core.
    pub cpu_percent: f64,
    /// Runs queued or running on the agent.
    pub queue_depth: u64,
    /// Results and events waiting in its outbox.
    pub outbox_depth: u64,
    /// Last commands-stream sequence it processed.
    pub cursor: u64,
}

/// One agent row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    /// Its id.
    pub agent_id: AgentId,
    /// Hostname (from enrollment, heartbeats or inventory, latest wins).
    pub hostname: String,
    /// OS name.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// CPU architecture.
    pub arch: String,
    /// Agent version.
    pub version: String,
    /// When it enrolled; `None` only for a row an older server created from heartbeats.
    pub enrolled_at: Option<Timestamp>,
    /// When the store first heard of it.
    pub first_seen_at: Timestamp,
    /// Time of its last heartbeat.
    pub last_heartbeat_at: Option<Timestamp>,
    /// Figures of the last heartbeat.
    pub last_heartbeat: Option<HeartbeatStats>,
    /// Liveness against the query's cut-off.
    pub liveness: Liveness,
    /// Its groups, in configuration-layer order.
    pub groups: Vec<GroupName>,
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

/// One group with its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Its name.
    pub group_name: GroupName,
    /// Free text.
    pub description: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// Members.
    pub n_agents: u64,
}
