//! Broker identities: the NATS user keys agents connect with, for revocation and display.

use serde::Serialize;
pub use tutti_api::agents::BrokerIdentity;

/// How far a signing key has reached the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyTrust {
    /// Enrolled agents whose last heartbeat listed the key as trusted.
    pub trusting: u64,
    /// Enrolled agents.
    pub enrolled: u64,
}
