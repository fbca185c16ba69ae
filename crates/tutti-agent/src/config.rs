//! The agent's local configuration file (`agent.toml`): where its state lives and the
//! local fallbacks for what the fleet's layered configuration does not set.
//!
//! Parsed strictly: an unknown key is an error naming the key, its line and column. The
//! example file `agent.example.toml` is embedded and a test keeps it parsing to the defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tutti_proto::command::Shell;

/// The documented example configuration, shipped with the binary.
pub const EXAMPLE: &str = include_str!("../agent.example.toml");

/// The contents of `agent.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Directory for identity, cursor, queue, outbox and KV replicas (created 0700).
    pub state_dir: PathBuf,
    /// Log filter in tracing's EnvFilter syntax.
    pub log_level: String,
    /// Broker URLs overriding the ones handed out at enrollment; empty means none.
    pub nats_urls: Vec<String>,
    /// Bound on every JetStream request and publish acknowledgement, in milliseconds.
    pub request_timeout_ms: u64,
    /// Ceiling of the jittered reconnect backoff, in milliseconds.
    pub reconnect_max_delay_ms: u64,
    /// Process execution.
    pub execution: ExecutionConfig,
    /// The results outbox.
    pub outbox: OutboxConfig,
    /// TLS to the broker beyond what enrollment handed out.
    pub tls: BrokerTlsConfig,
}

/// `[tls]`: the broker connection's TLS, for brokers that want more than enrollment says.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerTlsConfig {
    /// A PEM CA bundle to trust for the broker instead of the one from enrollment (or the
    /// system roots).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate, for brokers that verify clients (`verify: true`).
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// Process execution settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Commands executed at the same time (layered config `concurrency` wins).
    pub concurrency: usize,
    /// Grace between SIGTERM and SIGKILL for a timed-out or killed process group, in ms.
    pub kill_grace_ms: u64,
    /// The shells a command may ask for (`sh`, `bash`, `python3`, `pwsh`, `powershell`,
    /// `cmd`, `builtin`); empty allows every shell. A command asking for another one is
    /// not run: it ends `skipped` with reason `not_allowed`.
    pub allowed_shells: Vec<String>,
    /// The users a command may ask to run as; empty allows every user. A command that
    /// names no user runs as the agent's own user and is not affected.
    pub allowed_users: Vec<String>,
}

/// Bounds of the results outbox.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Messages waiting for the broker before new commands stop starting.
    pub max_messages: u64,
    /// Bytes waiting for the broker before new commands stop starting.
    pub max_bytes: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            state_dir: PathBuf::from("/var/lib/tutti-agent"),
            log_level: "info".into(),
            nats_urls: Vec::new(),
            request_timeout_ms: 5_000,
            reconnect_max_delay_ms: 30_000,
            execution: ExecutionConfig::default(),
            outbox: OutboxConfig::default(),
            tls: BrokerTlsConfig::default(),
        }
    }
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            concurrency: 4,
            kill_grace_ms: 5_000,
            allowed_shells: Vec::new(),
            allowed_users: Vec::new(),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 100_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl ExecutionConfig {
    /// The allowed shells, typed; `None` when every shell is allowed.
    pub fn allowed_shells(&self) -> Option<Vec<Shell>> {
        if self.allowed_shells.is_empty() {
            return None;
        }
        Some(
            self.allowed_shells
                .iter()
                .filter_map(|name| parse_shell(name))
                .collect(),
        )
    }

    /// A name that is not a shell tutti runs would never match a command: a typo that
    /// silently refuses everything, so it is an error.
    fn check_allowed_shells(&self) -> Result<(), String> {
        match self
            .allowed_shells
            .iter()
            .find(|name| parse_shell(name).is_none())
        {
            Some(name) => Err(format!(
                "execution.allowed_shells: {name:?} is not a shell tutti runs (sh, bash, python3, pwsh, powershell, cmd, builtin)"
            )),
            None => Ok(()),
        }
    }
}

/// The shell named as on the wire (`sh`, `bash`, ...); `None` for any other name.
fn parse_shell(name: &str) -> Option<Shell> {
    match serde_json::from_value(serde_json::Value::String(name.to_string())) {
        Ok(Shell::Unsupported) | Err(_) => None,
        Ok(shell) => Some(shell),
    }
}

impl LocalConfig {
    /// Parses TOML text; errors name the offending key with its line and column.
    pub fn parse(text: &str) -> Result<LocalConfig, String> {
        let config: LocalConfig =
            toml::from_str(text).map_err(|err| err.to_string().trim_end().to_string())?;
        if config.tls.client_cert.is_some() != config.tls.client_key.is_some() {
            return Err(
                "tls.client_cert and tls.client_key go together; set both or neither".into(),
            );
        }
        config.execution.check_allowed_shells()?;
        Ok(config)
    }

    /// Reads and parses a config file; a missing file is an error naming the path.
    pub fn load(path: &Path) -> Result<LocalConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        LocalConfig::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// The request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_parses_to_the_defaults() {
        assert_eq!(LocalConfig::parse(EXAMPLE).unwrap(), LocalConfig::default());
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(LocalConfig::parse("").unwrap(), LocalConfig::default());
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err =
            LocalConfig::parse("state_dir = \"/x\"\n\n[execution]\nconcurency = 3\n").unwrap_err();
        assert!(err.contains("concurency"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let err =
            LocalConfig::parse("[tls]\nclient_cert = \"/etc/tutti/agent.pem\"\n").unwrap_err();
        assert!(err.contains("tls.client_key"), "{err}");
        let config = LocalConfig::parse(
            "[tls]\nclient_cert = \"/a.pem\"\nclient_key = \"/a.key\"\nca_file = \"/ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.tls.ca_file, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn allowed_shells_must_be_shells_tutti_runs() {
        let config = LocalConfig::parse(
            "[execution]\nallowed_shells = [\"sh\", \"python3\"]\nallowed_users = [\"deploy\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.execution.allowed_shells(),
            Some(vec![Shell::Sh, Shell::Python3])
        );
        assert_eq!(config.execution.allowed_users, ["deploy"]);
        assert_eq!(LocalConfig::default().execution.allowed_shells(), None);
        let err = LocalConfig::parse("[execution]\nallowed_shells = [\"zsh\"]\n").unwrap_err();
        assert!(
            err.contains("allowed_shells") && err.contains("\"zsh\""),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_are_reported() {
        let err = LocalConfig::parse("request_timeout_ms = \"soon\"").unwrap_err();
        assert!(
            err.contains("request_timeout_ms") || err.contains("line 1"),
            "{err}"
        );
    }
}
