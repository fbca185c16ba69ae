//! Layered agent configuration, stored in the `tutti_fleet` KV bucket under
//! `config.global`, `config.group.<g>` and `config.agent.<id>` (see [`crate::kv_keys`]).
//!
//! Every [`AgentConfig`] field is optional so a layer sets only what it changes.
//! [`layered`] merges global, then the agent's groups in membership order, then the
//! agent's own layer; a later layer wins field by field, and fields no layer sets take
//! the documented defaults of [`EffectiveConfig`].

use serde::{Deserialize, Serialize};

/// One configuration layer. Unknown fields are ignored (a newer server may add some).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// Seconds between heartbeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_secs: Option<u64>,
    /// Seconds between inventory snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_interval_secs: Option<u64>,
    /// Runs executed at the same time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Agent log filter, e.g. `info` or `debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Cap on captured output per stream (stdout, stderr) of one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_limit_bytes: Option<u64>,
    /// Output up to this size travels inline in the result; beyond it, to the object store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_output_limit_bytes: Option<u64>,
}

impl AgentConfig {
    /// Overwrites every field that `later` sets.
    pub fn merge(&mut self, later: &AgentConfig) {
        merge_field(
            &mut self.heartbeat_interval_secs,
            &later.heartbeat_interval_secs,
        );
        merge_field(
            &mut self.inventory_interval_secs,
            &later.inventory_interval_secs,
        );
        merge_field(&mut self.concurrency, &later.concurrency);
        merge_field(&mut self.log_level, &later.log_level);
        merge_field(&mut self.output_limit_bytes, &later.output_limit_bytes);
        merge_field(
            &mut self.inline_output_limit_bytes,
            &later.inline_output_limit_bytes,
        );
    }
}

/// The configuration an agent runs with: every field concrete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveConfig {
    /// Default 30 s; at least 1.
    pub heartbeat_interval_secs: u64,
    /// Default 12 h; at least 60.
    pub inventory_interval_secs: u64,
    /// Default 4; at least 1.
    pub concurrency: u32,
    /// Default `info`.
    pub log_level: String,
    /// Default 8 MiB.
    pub output_limit_bytes: u64,
    /// Default 256 KiB; never above `output_limit_bytes`.
    pub inline_output_limit_bytes: u64,
}

/// Default seconds between heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL_SECS: u64 = 30;
/// Default seconds between inventory snapshots (12 h).
pub const DEFAULT_INVENTORY_INTERVAL_SECS: u64 = 12 * 60 * 60;
/// Default concurrent runs.
pub const DEFAULT_CONCURRENCY: u32 = 4;
/// Default log filter.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Default output cap per stream (8 MiB).
pub const DEFAULT_OUTPUT_LIMIT_BYTES: u64 = 8 << 20;
/// Default inline output limit per stream (256 KiB).
pub const DEFAULT_INLINE_OUTPUT_LIMIT_BYTES: u64 = 256 << 10;

/// Merges `global`, then `groups_in_order`, then `agent`, and fills in defaults.
///
/// Values that would break the agent are clamped rather than rejected, since one
/// bad layer must not stop a fleet: zero intervals and concurrency become the
/// minimum, and the inline limit never exceeds the output cap.
pub fn layered(
    global: &AgentConfig,
    groups_in_order: &[AgentConfig],
    agent: &AgentConfig,
) -> EffectiveConfig {
    let mut merged = global.clone();
    for group in groups_in_order {
        merged.merge(group);
    }
    merged.merge(agent);
    effective(merged)
}

fn effective(merged: AgentConfig) -> EffectiveConfig {
    let output_limit_bytes = merged
        .output_limit_bytes
        .unwrap_or(DEFAULT_OUTPUT_LIMIT_BYTES);
    let inline_output_limit_bytes = merged
        .inline_output_limit_bytes
        .unwrap_or(DEFAULT_INLINE_OUTPUT_LIMIT_BYTES);
    EffectiveConfig {
        heartbeat_interval_secs: merged
            .heartbeat_interval_secs
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL_SECS)
            .max(1),
        inventory_interval_secs: merged
            .inventory_interval_secs
            .unwrap_or(DEFAULT_INVENTORY_INTERVAL_SECS)
            .max(60),
        concurrency: merged.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1),
        log_level: merged
            .log_level
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string()),
        output_limit_bytes,
        inline_output_limit_bytes: inline_output_limit_bytes.min(output_limit_bytes),
    }
}

fn merge_field<T: Clone>(target: &mut Option<T>, later: &Option<T>) {
    if let Some(value) = later {
        *target = Some(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_layers_give_the_defaults() {
        let empty = AgentConfig::default();
        let config = layered(&empty, &[], &empty);
        assert_eq!(
            config,
            EffectiveConfig {
                heartbeat_interval_secs: 30,
                inventory_interval_secs: 43_200,
                concurrency: 4,
                log_level: "info".to_string(),
                output_limit_bytes: 8 * 1024 * 1024,
                inline_output_limit_bytes: 256 * 1024,
            }
        );
    }

    #[test]
    fn later_layers_win_field_by_field() {
        let global = AgentConfig {
            heartbeat_interval_secs: Some(10),
            concurrency: Some(2),
            log_level: Some("warn".to_string()),
            ..AgentConfig::default()
        };
        let groups = [
            AgentConfig {
                concurrency: Some(8),
                ..AgentConfig::default()
            },
            AgentConfig {
                concurrency: Some(16),
                output_limit_bytes: Some(1 << 20),
                ..AgentConfig::default()
            },
        ];
        let agent = AgentConfig {
            log_level: Some("debug".to_string()),
            ..AgentConfig::default()
        };
        let config = layered(&global, &groups, &agent);
        assert_eq!(config.heartbeat_interval_secs, 10);
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.output_limit_bytes, 1 << 20);
        assert_eq!(config.inline_output_limit_bytes, 256 << 10);
    }

    #[test]
    fn harmful_values_are_clamped() {
        let layer = AgentConfig {
            heartbeat_interval_secs: Some(0),
            concurrency: Some(0),
            output_limit_bytes: Some(1000),
            ..AgentConfig::default()
        };
        let config = layered(&layer, &[], &AgentConfig::default());
        assert_eq!(config.heartbeat_interval_secs, 1);
        assert_eq!(config.concurrency, 1);
        assert_eq!(config.inline_output_limit_bytes, 1000);
    }

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let layer = AgentConfig {
            concurrency: Some(3),
            ..AgentConfig::default()
        };
        let json = serde_json::to_string(&layer).unwrap();
        assert_eq!(serde_json::from_str::<AgentConfig>(&json).unwrap(), layer);
        let newer = r#"{"concurrency": 3, "update_channel": "beta"}"#;
        assert_eq!(serde_json::from_str::<AgentConfig>(newer).unwrap(), layer);
    }
}
