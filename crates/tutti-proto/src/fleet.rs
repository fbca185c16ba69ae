//! Values of the fleet-state KV buckets the agent follows: group membership
//! (`tutti_groups`), revocations (`tutti_revocations`) and the freeze (`tutti_fleet`).
//! The keys are built in [`crate::kv_keys`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::GroupName;

/// `tutti_groups` / `agent.<id>`: the groups an agent belongs to, in the order their
/// configuration layers apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    /// Group names, first applied first.
    #[serde(default)]
    pub groups: Vec<GroupName>,
}

/// `tutti_revocations` / `job.<job>` or `run.<run>`: queued copies are skipped and,
/// for a run, running processes are killed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When it was revoked.
    pub at: Timestamp,
    /// Who revoked it.
    #[serde(default)]
    pub actor: String,
    /// Why, for the operator.
    #[serde(default)]
    pub reason: String,
}

/// `tutti_fleet` / `freeze`: while `frozen`, agents skip commands with `scheduled` set
/// and the server fires no schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetFreeze {
    /// Whether the fleet is frozen.
    pub frozen: bool,
    /// When the state was last changed.
    pub at: Timestamp,
    /// Who changed it.
    #[serde(default)]
    pub actor: String,
    /// Why, for the operator.
    #[serde(default)]
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_ignore_unknown_fields() {
        let membership = GroupMembership {
            groups: vec![GroupName::parse("ops").unwrap()],
        };
        let json = r#"{"groups": ["ops"], "source": "ldap"}"#;
        assert_eq!(
            serde_json::from_str::<GroupMembership>(json).unwrap(),
            membership
        );

        let freeze = FleetFreeze {
            frozen: true,
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            actor: "alice".to_string(),
            reason: "incident".to_string(),
        };
        let json = serde_json::to_string(&freeze).unwrap();
        assert_eq!(serde_json::from_str::<FleetFreeze>(&json).unwrap(), freeze);

        let json = r#"{"at": "2024-05-01T12:00:00Z", "until": "never"}"#;
        let revocation: Revocation = serde_json::from_str(json).unwrap();
        assert!(revocation.actor.is_empty());
    }
}
