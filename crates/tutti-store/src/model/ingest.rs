//! Inputs and outputs of the projector batch functions (`apply_*`).

use serde::Serialize;
pub use tutti_api::audit::{Anomaly, AnomalyKind};
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
