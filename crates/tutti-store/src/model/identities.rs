//! Broker identities: the NATS user keys agents connect with, for revocation and display.

use jiff::Timestamp;
use serde::Serialize;
use tutti_proto::AgentId;

/// One user key issued to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// How far a signing key has reached the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyTrust {
    /// Enrolled agents whose last heartbeat listed the key as trusted.
    pub trusting: u64,
    /// Enrolled agents.
    pub enrolled: u64,
}
