//! The server's configuration file (`server.toml`), parsed and validated before anything
//! live is built from it.
//!
//! Every field has a default, unknown keys are rejected with their line and column, and
//! the documented example `server.example.toml` is embedded and kept parsing to the
//! defaults by a test. Secrets (broker credentials) keep their redacting `Debug` from
//! `tutti-bus` and `tutti-proto`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tutti_bus::BusConfig;
use tutti_proto::catalog::{CatalogConfig, DEFAULT_STORAGE_BUDGET_BYTES};
use tutti_proto::enroll::NatsAuth;

/// The documented example configuration.
pub const EXAMPLE: &str = include_str!("../server.example.toml");

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "tutti.db";

/// Everything `tutti server` is configured with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP API listens on. Localhost by default; every route but health,
    /// sign-in and enrollment needs an account or an API token. Only `main.rs` binds it;
    /// [`crate::run`] takes a bound listener.
    pub listen: SocketAddr,
    /// Directory of the SQLite database and the command-signing key.
    pub data_dir: PathBuf,
    /// Agents whose last heartbeat is older than this many seconds are offline.
    pub offline_after_secs: u64,
    /// The broker connection.
    pub bus: BusConfig,
    /// The JetStream storage budget and replicas of tutti's resources.
    pub storage: StorageConfig,
    /// What enrolling agents are told about the broker.
    pub enrollment: EnrollmentConfig,
    /// HTTP limits.
    pub http: HttpConfig,
    /// Stream projectors.
    pub projector: ProjectorConfig,
    /// The run engine.
    pub runs: RunsConfig,
    /// Sign-in: sessions, cookies, throttling, MFA policy.
    pub auth: AuthConfig,
    /// The scheduler and its leader lease.
    pub scheduler: SchedulerConfig,
}

/// Sizes and replicas of the streams, buckets and object stores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Bytes of JetStream file storage tutti may reserve (the catalog's budget).
    pub budget_bytes: u64,
    /// Replicas of every resource: 1 on a single node, 3 on a cluster.
    pub replicas: usize,
}

/// The broker URLs and credentials handed to agents at enrollment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EnrollmentConfig {
    /// Broker URLs for agents; empty means the server's own `bus.urls`.
    pub nats_urls: Vec<String>,
    /// Broker credentials for agents.
    pub nats_auth: NatsAuth,
}

/// HTTP request limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Largest job manifest in bytes; larger ones get 413.
    pub manifest_limit_bytes: usize,
}

/// Batching of the stream projectors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectorConfig {
    /// Messages per transaction at most.
    pub batch_size: usize,
    /// Milliseconds a batch waits to fill before it is applied.
    pub batch_window_ms: u64,
    /// Seconds the broker waits for an acknowledgement before redelivering a message
    /// (after a crash, unacknowledged messages come back after this long).
    pub ack_wait_secs: u64,
    /// Prefix of the durable consumer names (`<prefix>-results`, ...). Server replicas
    /// that share a database use the same prefix and so share the consumers.
    pub consumer_prefix: String,
}

/// The run engine's timers and defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RunsConfig {
    /// Seconds between sweeps that expire queued targets of runs past their deadline.
    pub expiry_sweep_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("tutti-data"),
            offline_after_secs: 90,
            bus: BusConfig {
                name: "tutti-server".to_string(),
                ..BusConfig::default()
            },
            storage: StorageConfig::default(),
            enrollment: EnrollmentConfig::default(),
            http: HttpConfig::default(),
            projector: ProjectorConfig::default(),
            runs: RunsConfig::default(),
            auth: AuthConfig::default(),
            scheduler: SchedulerConfig::default(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            budget_bytes: DEFAULT_STORAGE_BUDGET_BYTES,
            replicas: 1,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 1 << 20,
            manifest_limit_bytes: 256 << 10,
        }
    }
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            batch_size: 500,
            batch_window_ms: 250,
            ack_wait_secs: 30,
            consumer_prefix: "tutti-server".to_string(),
        }
    }
}

/// `[scheduler]`: firing schedules, on one server of many.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Whether this server takes part in the leader election and fires schedules.
    pub enabled: bool,
    /// How often the leader looks for due fires, in milliseconds.
    pub tick_ms: u64,
    /// How long a leader's lease lasts without renewal, in seconds (below the leases
    /// bucket's 30 s history so a term is never reused).
    pub lease_ttl_secs: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            tick_ms: 1000,
            lease_ttl_secs: 15,
        }
    }
}

/// `[auth]`: how accounts sign in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A dashboard session ends this long after sign-in, whatever happens.
    pub session_ttl_secs: u64,
    /// A dashboard session ends after this long without a request.
    pub session_idle_secs: u64,
    /// Mark the session cookie `Secure`. Turn on whenever the dashboard is reached over
    /// TLS (the server itself speaks plain HTTP; TLS ends at a reverse proxy).
    pub secure_cookies: bool,
    /// Admins must set up TOTP before they can do anything else.
    pub require_mfa_for_admins: bool,
    /// Failed sign-ins of one account inside the window before it is locked out.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one address inside the window before it is locked out.
    pub max_failures_per_source: u32,
    /// The window failed sign-ins are counted in, in seconds.
    pub failure_window_secs: u64,
    /// How long a lockout lasts, in seconds.
    pub lockout_secs: u64,
    /// The longest lifetime an API token may be given, in days (0 = tokens may never expire).
    pub api_token_max_days: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_secs: 12 * 3600,
            session_idle_secs: 3600,
            secure_cookies: false,
            require_mfa_for_admins: false,
            max_failures_per_account: 5,
            max_failures_per_source: 20,
            failure_window_secs: 900,
            lockout_secs: 900,
            api_token_max_days: 0,
        }
    }
}

impl Default for RunsConfig {
    fn default() -> Self {
        RunsConfig {
            expiry_sweep_secs: 10,
        }
    }
}

impl ServerConfig {
    /// Parses TOML text; errors name the offending key with its line and column.
    pub fn parse(text: &str) -> Result<ServerConfig, String> {
        let config: ServerConfig =
            toml::from_str(text).map_err(|err| err.to_string().trim_end().to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a config file; errors name the path.
    pub fn load(path: &Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        ServerConfig::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Checks the values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.bus.urls.is_empty() {
            return Err("bus.urls must name at least one broker".into());
        }
        if self.projector.batch_size == 0 {
            return Err("projector.batch_size must be at least 1".into());
        }
        if self.storage.replicas == 0 {
            return Err("storage.replicas must be at least 1".into());
        }
        if self.http.body_limit_bytes < 1024 {
            return Err("http.body_limit_bytes must be at least 1024".into());
        }
        let auth = &self.auth;
        if auth.session_ttl_secs == 0 || auth.session_idle_secs == 0 {
            return Err(
                "auth.session_ttl_secs and auth.session_idle_secs must be at least 1".into(),
            );
        }
        if self.scheduler.tick_ms < 100 || !(2..30).contains(&self.scheduler.lease_ttl_secs) {
            return Err("scheduler.tick_ms must be at least 100 and scheduler.lease_ttl_secs between 2 and 29".into());
        }
        if auth.max_failures_per_account == 0 || auth.max_failures_per_source == 0 {
            return Err(
                "auth.max_failures_per_account and auth.max_failures_per_source must be at least 1"
                    .into(),
            );
        }
        Ok(())
    }

    /// The SQLite database path.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// The catalog sizes derived from the storage section.
    pub fn catalog(&self) -> CatalogConfig {
        CatalogConfig {
            storage_budget_bytes: self.storage.budget_bytes,
            replicas: self.storage.replicas,
        }
    }

    /// The broker URLs handed to agents.
    pub fn agent_nats_urls(&self) -> Vec<String> {
        if self.enrollment.nats_urls.is_empty() {
            self.bus.urls.clone()
        } else {
            self.enrollment.nats_urls.clone()
        }
    }

    /// The heartbeat age after which an agent counts as offline.
    pub fn offline_after(&self) -> Duration {
        Duration::from_secs(self.offline_after_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_parses_to_the_defaults() {
        assert_eq!(
            ServerConfig::parse(EXAMPLE).unwrap(),
            ServerConfig::default()
        );
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(ServerConfig::parse("").unwrap(), ServerConfig::default());
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err =
            ServerConfig::parse("listen = \"127.0.0.1:1\"\n[http]\nbody_limit = 5\n").unwrap_err();
        assert!(err.contains("body_limit"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn the_api_listens_on_localhost_by_default() {
        assert!(ServerConfig::default().listen.ip().is_loopback());
    }

    #[test]
    fn agent_credentials_never_show_in_debug_output() {
        let config = ServerConfig::parse(
            "[enrollment]\nnats_auth = { method = \"token\", token = \"s3cret\" }\n",
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
