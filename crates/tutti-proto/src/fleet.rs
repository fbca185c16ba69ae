//! Values of the fleet state the agent follows in `tutti_fleet`: group membership,
//! revocations and the freeze. The keys are built in [`crate::kv_keys`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::GroupName;

/// `tutti_fleet` / `groups.<id>`: the groups an agent belongs to, in the order their
/// configuration layers apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    /// Group names, first applied first.
    #[serde(default)]
    pub groups: Vec<GroupName>,
}

/// `tutti_fleet` / `revoked.job.<job>` or `revoked.run.<run>`: queued copies are skipped and,
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

/// `tutti_fleet` / `freeze`: while the freeze is in force ([`FleetFreeze::in_force`]),
/// agents skip commands with `scheduled` set and the server fires no schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetFreeze {
    /// Whether the fleet is frozen.
    pub frozen: bool,
    /// When the freeze ends by itself; `None` keeps it until it is lifted. Absent in
    /// values written before the field existed, which therefore stay indefinite.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// When the state was last changed.
    pub at: Timestamp,
    /// Who changed it.
    #[serde(default)]
    pub actor: String,
    /// Why, for the operator.
    #[serde(default)]
    pub reason: String,
}

impl FleetFreeze {
    /// Whether the freeze holds at `now`. Every reader (agent gate, scheduler, run
    /// creation) asks with its own clock at the moment it decides, not when the value
    /// arrived, so an expired freeze ends without anyone writing the key.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.frozen && self.until.is_none_or(|until| now < until)
    }
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
            until: Some("2024-05-01T14:00:00Z".parse().unwrap()),
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            actor: "alice".to_string(),
            reason: "incident".to_string(),
        };
        let json = serde_json::to_string(&freeze).unwrap();
        assert_eq!(serde_json::from_str::<FleetFreeze>(&json).unwrap(), freeze);
        let indefinite = FleetFreeze {
            until: None,
            ..freeze.clone()
        };
        let json = serde_json::to_string(&indefinite).unwrap();
        assert_eq!(
            serde_json::from_str::<FleetFreeze>(&json).unwrap(),
            indefinite
        );

        // A value written before `until` existed decodes as an indefinite freeze.
        let json = r#"{"frozen": true, "at": "2024-05-01T12:00:00Z", "actor": "alice", "reason": "incident"}"#;
        assert_eq!(
            serde_json::from_str::<FleetFreeze>(json).unwrap(),
            indefinite
        );

        let json = r#"{"at": "2024-05-01T12:00:00Z", "until": "never"}"#;
        let revocation: Revocation = serde_json::from_str(json).unwrap();
        assert!(revocation.actor.is_empty());
    }

    #[test]
    fn a_freeze_is_in_force_while_frozen_and_before_until() {
        let at: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let until: Timestamp = "2024-05-01T14:00:00Z".parse().unwrap();
        let freeze = |frozen, until| FleetFreeze {
            frozen,
            until,
            at,
            actor: String::new(),
            reason: String::new(),
        };
        let before = until - jiff::SignedDuration::from_secs(1);
        assert!(freeze(true, None).in_force(until));
        assert!(freeze(true, Some(until)).in_force(before));
        assert!(!freeze(true, Some(until)).in_force(until), "ends at until");
        assert!(!freeze(false, None).in_force(before));
        assert!(!freeze(false, Some(until)).in_force(before));
    }
}
