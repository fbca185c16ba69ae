//! Agent events on `tutti.agent.<id>.event` (stream `TUTTI_EVENTS`): progress of a
//! command through the agent, refusals and gaps.
//!
//! Events tell the server where a target is between queued and done. A skipped run is
//! not an event: it ends with a [`crate::result::RunResult`] in state `skipped`, so every
//! target reaches its final state through the results stream alone. Kinds from a newer
//! agent decode to [`EventKind::Unknown`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, CommandId, RunId};

/// One event from one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// The reporting agent; must match the subject's agent id.
    pub agent_id: AgentId,
    /// When it happened on the agent.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What happened, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A verified command was taken from the stream and queued.
    Received {
        /// The run.
        run_id: RunId,
        /// The command.
        command_id: CommandId,
        /// Its `TUTTI_COMMANDS` stream sequence.
        stream_seq: u64,
    },
    /// The process (or builtin) started.
    Started {
        /// The run.
        run_id: RunId,
        /// The command.
        command_id: CommandId,
    },
    /// A command was not accepted (bad signature, unknown key, malformed, unknown type).
    ///
    /// An agent reports a limited number of refusals a minute one by one; the rest are
    /// counted and reported in one summary, a `Refused` whose `suppressed` says how many
    /// it stands for and whose `stream_seq` is the last of them.
    Refused {
        /// The command id, when it could be read.
        #[serde(default)]
        command_id: Option<CommandId>,
        /// Its `TUTTI_COMMANDS` stream sequence.
        stream_seq: u64,
        /// Why, for the operator.
        reason: String,
        /// On a summary: how many refusals were not reported one by one. Zero (and absent
        /// on the wire) on a single refusal, and from agents older than the rate limit.
        #[serde(default, skip_serializing_if = "is_zero")]
        suppressed: u64,
    },
    /// Commands the agent can never see: stream sequences `from_seq..=to_seq` were
    /// removed by retention before the agent resumed.
    GapDetected {
        /// First missed sequence.
        from_seq: u64,
        /// Last missed sequence (inclusive).
        to_seq: u64,
    },
    /// A `tutti_fleet` value the agent did not apply because it is not signed by the
    /// server's key for that KV key (unsigned, tampered, another key, copied from another
    /// key). The agent keeps following the values it trusts.
    FleetValueRefused {
        /// The KV key.
        key: String,
        /// Why, for the operator.
        reason: String,
    },
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> AgentEvent {
        AgentEvent {
            agent_id: AgentId::parse("web-01").unwrap(),
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            kind,
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let run_id = RunId::from_parts(1_700_000_000_000, 2);
        let command_id = CommandId::from_parts(1_700_000_000_000, 1);
        let kinds = [
            EventKind::Received {
                run_id,
                command_id,
                stream_seq: 42,
            },
            EventKind::Started { run_id, command_id },
            EventKind::Refused {
                command_id: None,
                stream_seq: 43,
                reason: "command signature does not verify".to_string(),
                suppressed: 0,
            },
            EventKind::Refused {
                command_id: None,
                stream_seq: 99,
                reason: "56 more refusals".to_string(),
                suppressed: 56,
            },
            EventKind::GapDetected {
                from_seq: 1,
                to_seq: 41,
            },
        ];
        for kind in kinds {
            let event = event(kind);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<AgentEvent>(&json).unwrap(), event);
        }
    }

    /// A single refusal looks as it did before the rate limit, so older servers read both.
    #[test]
    fn suppressed_is_only_on_the_wire_in_a_summary() {
        let single = EventKind::Refused {
            command_id: None,
            stream_seq: 7,
            reason: "expired".to_string(),
            suppressed: 0,
        };
        let json = serde_json::to_value(&single).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "refused", "command_id": null, "stream_seq": 7, "reason": "expired"})
        );
        let summary =
            serde_json::json!({"type": "refused", "stream_seq": 9, "reason": "r", "suppressed": 3});
        let decoded: EventKind = serde_json::from_value(summary).unwrap();
        assert!(matches!(decoded, EventKind::Refused { suppressed: 3, .. }));
    }

    #[test]
    fn newer_agent_events_still_decode() {
        let json = r#"{"agent_id": "web-01", "at": "2024-05-01T12:00:00Z", "boot_id": "x",
            "kind": {"type": "gap_detected", "from_seq": 1, "to_seq": 2, "stream": "c"}}"#;
        let event: AgentEvent = serde_json::from_str(json).unwrap();
        let gap = EventKind::GapDetected {
            from_seq: 1,
            to_seq: 2,
        };
        assert_eq!(event.kind, gap);

        let json = r#"{"agent_id": "web-01", "at": "2024-05-01T12:00:00Z",
            "kind": {"type": "throttled", "seconds": 5}}"#;
        let event: AgentEvent = serde_json::from_str(json).unwrap();
        assert_eq!(event.kind, EventKind::Unknown);
    }
}
