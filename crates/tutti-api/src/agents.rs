//! Agents, their groups, liveness and broker identities.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::{AgentId, GroupName};
use utoipa::ToSchema;

/// Whether an agent is reachable, judged from its last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// One group with its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// One user key issued to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BrokerIdentity {
    /// The user's public nkey (`U...`).
    pub public_key: String,
    /// The agent it was issued to.
    pub agent_id: AgentId,
    /// When its JWT was issued.
    pub issued_at: Timestamp,
    /// When it was revoked (the agent was deleted, or re-enrolled with a new key).
    pub revoked_at: Option<Timestamp>,
}

/// An agent with its inventory summary and recent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentDetail {
    /// The agent.
    pub agent: Agent,
    /// Its current inventory, when it reported one.
    pub inventory: Option<crate::inventory::AgentInventory>,
    /// Its most recent run targets.
    pub recent_runs: crate::page::Paged<crate::runs::Target>,
    /// The broker keys issued to it, newest first (empty without per-agent identities).
    pub broker_identities: Vec<BrokerIdentity>,
}
