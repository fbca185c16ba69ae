//! Layered agent configuration, stored in the `tutti_fleet` KV bucket under
//! `config.global`, `config.group.<g>` and `config.agent.<id>` (see [`crate::kv_keys`]).
//!
//! Every [`AgentConfig`] field is optional so a layer sets only what it changes.
//! [`layered`] merges global, then the agent's groups in membership order, then the
//! agent's own layer; a later layer wins field by field, and fields no layer sets take
//! the documented defaults of [`EffectiveConfig`].
//!
//! Every numeric key has a range ([`RANGES`]) and `log_level` a length and alphabet
//! ([`check_log_level`]). The server refuses a layer outside them ([`AgentConfig::check`]);
//! an agent that still receives one (an older server, a hand-written value) clamps it
//! ([`AgentConfig::clamped`]) and reports what it changed, so no value can stop a machine
//! from heartbeating or running commands.

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

/// The range of one numeric configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// The key, as in the JSON layer.
    pub key: &'static str,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
    /// What the number counts.
    pub unit: &'static str,
}

/// The accepted range of every numeric key. An interval above an hour (heartbeat) or a
/// week (inventory) makes a machine look dead or its inventory useless; more than 256
/// concurrent runs is a fork bomb; output limits stay within what one result message
/// (1 MiB, two streams inline) and the object store can carry.
pub const RANGES: [KeyRange; 5] = [
    KeyRange {
        key: "heartbeat_interval_secs",
        min: 1,
        max: 3_600,
        unit: "seconds",
    },
    KeyRange {
        key: "inventory_interval_secs",
        min: 60,
        max: 7 * 24 * 3_600,
        unit: "seconds",
    },
    KeyRange {
        key: "concurrency",
        min: 1,
        max: 256,
        unit: "runs",
    },
    KeyRange {
        key: "output_limit_bytes",
        min: 1 << 10,
        max: MAX_OUTPUT_LIMIT_BYTES,
        unit: "bytes",
    },
    KeyRange {
        key: "inline_output_limit_bytes",
        min: 0,
        max: 384 << 10,
        unit: "bytes",
    },
];

/// The largest output cap per stream, for the configuration and for a job's own
/// `output_limit_bytes` alike.
pub const MAX_OUTPUT_LIMIT_BYTES: u64 = 64 << 20;

/// Longest accepted `log_level`.
pub const MAX_LOG_LEVEL_CHARS: usize = 256;

/// A configuration value outside its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// The range of `key`; `None` for `log_level` and keys this version does not know.
pub fn range_of(key: &str) -> Option<&'static KeyRange> {
    RANGES.iter().find(|range| range.key == key)
}

/// Checks a numeric value against its key's range.
pub fn check_number(key: &'static str, value: u64) -> Result<(), ConfigError> {
    let Some(range) = range_of(key) else {
        return Ok(());
    };
    if (range.min..=range.max).contains(&value) {
        return Ok(());
    }
    Err(ConfigError {
        key,
        message: format!(
            "{value} is outside {}..={} ({})",
            range.min, range.max, range.unit
        ),
    })
}

/// A log filter: 1 to 256 characters of letters, digits and `_ : = , . -` (levels like
/// `debug` and directives like `tutti_agent=debug,async_nats=warn`).
pub fn check_log_level(text: &str) -> Result<(), ConfigError> {
    let error = |message: String| ConfigError {
        key: "log_level",
        message,
    };
    if text.is_empty() || text.chars().count() > MAX_LOG_LEVEL_CHARS {
        return Err(error(format!(
            "must be 1 to {MAX_LOG_LEVEL_CHARS} characters, e.g. `info` or `tutti_agent=debug`"
        )));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_:=,.-".contains(*c)))
    {
        return Err(error(format!(
            "{bad:?} is not allowed; use letters, digits and _ : = , . -"
        )));
    }
    Ok(())
}

impl AgentConfig {
    /// Every value outside its range; empty when the layer is acceptable.
    pub fn check(&self) -> Vec<ConfigError> {
        self.clamped().1
    }

    /// The layer with every value brought into range (an unusable `log_level` is
    /// dropped), and what was changed.
    pub fn clamped(&self) -> (AgentConfig, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let mut clamp = |key: &'static str, value: Option<u64>| {
            let value = value?;
            let range = range_of(key).expect("every numeric key has a range");
            match check_number(key, value) {
                Ok(()) => Some(value),
                Err(err) => {
                    errors.push(err);
                    Some(value.clamp(range.min, range.max))
                }
            }
        };
        let mut clamped = AgentConfig {
            heartbeat_interval_secs: clamp("heartbeat_interval_secs", self.heartbeat_interval_secs),
            inventory_interval_secs: clamp("inventory_interval_secs", self.inventory_interval_secs),
            concurrency: clamp("concurrency", self.concurrency.map(u64::from))
                .map(|value| u32::try_from(value).unwrap_or(u32::MAX)),
            log_level: None,
            output_limit_bytes: clamp("output_limit_bytes", self.output_limit_bytes),
            inline_output_limit_bytes: clamp(
                "inline_output_limit_bytes",
                self.inline_output_limit_bytes,
            ),
        };
        if let Some(level) = &self.log_level {
            match check_log_level(level) {
                Ok(()) => clamped.log_level = Some(level.clone()),
                Err(err) => errors.push(err),
            }
        }
        (clamped, errors)
    }

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
/// Values that would break the agent are clamped into [`RANGES`] rather than rejected,
/// since one bad layer must not stop a fleet, and the inline limit never exceeds the
/// output cap.
pub fn layered(
    global: &AgentConfig,
    groups_in_order: &[AgentConfig],
    agent: &AgentConfig,
) -> EffectiveConfig {
    let mut merged = global.clamped().0;
    for group in groups_in_order {
        merged.merge(&group.clamped().0);
    }
    merged.merge(&agent.clamped().0);
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
            output_limit_bytes: Some(2000),
            ..AgentConfig::default()
        };
        let config = layered(&layer, &[], &AgentConfig::default());
        assert_eq!(config.heartbeat_interval_secs, 1);
        assert_eq!(config.concurrency, 1);
        assert_eq!(config.inline_output_limit_bytes, 2000);

        let absurd = AgentConfig {
            heartbeat_interval_secs: Some(u64::MAX / 2),
            inventory_interval_secs: Some(1),
            concurrency: Some(u32::MAX),
            log_level: Some("debug\u{7}".to_string()),
            output_limit_bytes: Some(u64::MAX),
            inline_output_limit_bytes: Some(u64::MAX),
        };
        let errors = absurd.check();
        let keys: Vec<&str> = errors.iter().map(|err| err.key).collect();
        assert_eq!(
            keys,
            [
                "heartbeat_interval_secs",
                "inventory_interval_secs",
                "concurrency",
                "output_limit_bytes",
                "inline_output_limit_bytes",
                "log_level"
            ]
        );
        assert_eq!(
            errors[0].to_string(),
            "heartbeat_interval_secs: 9223372036854775807 is outside 1..=3600 (seconds)"
        );
        let config = layered(&absurd, &[], &AgentConfig::default());
        assert_eq!(config.heartbeat_interval_secs, 3_600);
        assert_eq!(config.inventory_interval_secs, 60);
        assert_eq!(config.concurrency, 256);
        assert_eq!(config.log_level, "info");
        assert_eq!(config.output_limit_bytes, 64 << 20);
        assert_eq!(config.inline_output_limit_bytes, 384 << 10);
    }

    #[test]
    fn log_levels_are_filters_not_free_text() {
        assert!(check_log_level("info").is_ok());
        assert!(check_log_level("tutti_agent=debug,async_nats=warn").is_ok());
        assert!(check_log_level("").is_err());
        assert!(check_log_level("info\nwarn").is_err());
        assert!(check_log_level(&"a".repeat(MAX_LOG_LEVEL_CHARS + 1)).is_err());
        assert!(AgentConfig::default().check().is_empty());
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
