//! Inputs and outputs of the projector batch functions (`apply_*`).

use serde::Serialize;
use tutti_proto::AgentId;

/// A message together with its JetStream stream sequence, the projectors' idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced<T> {
    /// Stream sequence of the message.
    pub stream_seq: u64,
    /// The decoded message.
    pub message: T,
}

impl<T> Sequenced<T> {
    /// Pairs a message with its stream sequence.
    pub fn new(stream_seq: u64, message: T) -> Self {
        Sequenced {
            stream_seq,
            message,
        }
    }
}

/// What one `apply_*` batch did, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyOutcome {
    /// Messages stored for the first time.
    pub applied: u64,
    /// Messages already stored (redelivery or replay): nothing changed.
    pub duplicates: u64,
    /// Messages recorded as anomalies instead (unknown run, untargeted agent, bad ids).
    pub anomalies: u64,
    /// Target transitions that happened.
    pub transitions: u64,
    /// The agent id of every message dropped because no enrolled agent has that id (never
    /// enrolled, or deleted), one entry per message: such messages change nothing and
    /// are not recorded as anomalies, so that whoever can publish under any id cannot
    /// grow a table with them.
    pub unknown_agents: Vec<AgentId>,
}

/// Why a message was recorded as an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
