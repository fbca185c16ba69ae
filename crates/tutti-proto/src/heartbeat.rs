//! The agent's liveness beacon on `tutti.agent.<id>.heartbeat` (core NATS, not stored).
//!
//! Sent every `heartbeat_interval_secs` (see [`crate::config`]). The server keeps the
//! latest per agent; a missing heartbeat is what marks a machine offline. Every field
//! but the agent id and time has a default so a newer agent may drop one.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, KeyId};

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sending agent; must match the subject's agent id.
    pub agent_id: AgentId,
    /// When it was sent.
    pub at: Timestamp,
    /// Agent version, e.g. `0.1.0`.
    #[serde(default)]
    pub version: String,
    /// Seconds since the agent process started.
    #[serde(default)]
    pub uptime_secs: u64,
    /// Resident memory of the agent process.
    #[serde(default)]
    pub rss_bytes: u64,
    /// CPU use of the agent process, percent of one core.
    #[serde(default)]
    pub cpu_percent: f32,
    /// Runs queued or running.
    #[serde(default)]
    pub queue_depth: u32,
    /// Results and events waiting in the outbox.
    #[serde(default)]
    pub outbox_depth: u32,
    /// Last `TUTTI_COMMANDS` sequence the agent has processed.
    #[serde(default)]
    pub cursor: u64,
    /// The machine's hostname.
    #[serde(default)]
    pub hostname: String,
    /// The signing keys the agent trusts now; what `tutti keys status` counts before a
    /// rotation's next key takes over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<KeyId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let heartbeat = Heartbeat {
            agent_id: AgentId::parse("web-01").unwrap(),
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            version: "0.1.0".to_string(),
            uptime_secs: 60,
            rss_bytes: 4 << 20,
            cpu_percent: 0.5,
            queue_depth: 1,
            outbox_depth: 0,
            cursor: 42,
            hostname: "web-01.example".to_string(),
            trusted_keys: vec![KeyId::for_public_key(&[1; 32])],
        };
        let mut json = serde_json::to_value(&heartbeat).unwrap();
        assert_eq!(
            serde_json::from_value::<Heartbeat>(json.clone()).unwrap(),
            heartbeat
        );
        json["battery_percent"] = 80.into();
        assert_eq!(
            serde_json::from_value::<Heartbeat>(json).unwrap(),
            heartbeat
        );
    }

    #[test]
    fn minimal_heartbeat_decodes() {
        let json = r#"{"agent_id": "web-01", "at": "2024-05-01T12:00:00Z"}"#;
        let heartbeat: Heartbeat = serde_json::from_str(json).unwrap();
        assert_eq!(heartbeat.cursor, 0);
    }
}
