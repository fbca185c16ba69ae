//! The audit log and the anomalies the projectors recorded.

use serde::{Deserialize, Serialize};
use tutti_proto::audit::AuditRecord;
use utoipa::ToSchema;

/// One audit record with its stream sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// `TUTTI_AUDIT` sequence; unique.
    pub stream_seq: u64,
    /// The record.
    pub record: AuditRecord,
}

/// Why a message was recorded as an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The run does not exist.
    UnknownRun,
    /// The run exists but did not target this agent.
    NotTargeted,
    /// `result_id` does not match `run_id` and `agent_id`.
    InconsistentIds,
}

impl AnomalyKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::UnknownRun => "unknown_run",
            AnomalyKind::NotTargeted => "not_targeted",
            AnomalyKind::InconsistentIds => "inconsistent_ids",
        }
    }
}

/// One recorded anomaly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Anomaly {
    /// Stream the message came from, e.g. `TUTTI_RESULTS`.
    pub stream: String,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// Stored kind name (see [`AnomalyKind::as_str`]).
    pub kind: String,
    /// The agent that sent it.
    pub agent_id: String,
    /// The run it named, if any.
    pub run_id: Option<String>,
    /// When it happened according to the message.
    pub at: jiff::Timestamp,
    /// The whole message as JSON.
    pub payload: serde_json::Value,
}
