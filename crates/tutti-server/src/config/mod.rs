//! The server's configuration file (`server.toml`), parsed and validated before anything
//! live is built from it.
//!
//! Every field has a default, unknown keys are rejected, and the documented example
//! `server.example.toml` is embedded and kept parsing to the defaults by a test. `load.rs`
//! reads a file (plus `TUTTI_*` overrides) and turns every error into `FILE:LINE: KEY:
//! message`; `check.rs` holds the checks of values that parse but cannot work. Secrets
//! (broker credentials) keep their redacting `Debug` from `tutti-bus` and `tutti-proto`.

mod check;
mod load;

pub use load::{ConfigError, ConfigFile, EnvOverrides};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tutti_bus::BusConfig;
use tutti_proto::catalog::{CatalogConfig, DEFAULT_STORAGE_BUDGET_BYTES};
use tutti_proto::enroll::NatsAuth;

/// The documented example configuration.
pub const EXAMPLE: &str = include_str!("../../server.example.toml");

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
    /// The URL operators and agents reach this server at (`https://tutti.example.com`),
    /// used in install commands and the install script. Empty: taken from each request's
    /// `Host` header, which is only right when nothing rewrites it.
    pub public_url: String,
    /// Agents whose last heartbeat is older than this many seconds are offline.
    pub offline_after_secs: u64,
    /// The database.
    pub database: DatabaseConfig,
    /// The command-signing key.
    pub keys: KeysConfig,
    /// Logging of `tutti server`.
    pub log: LogConfig,
    /// Per-agent broker identities (NATS operator mode).
    pub broker_identity: BrokerIdentityConfig,
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

/// `[database]`: where the SQLite database lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The SQLite file; absent means `<data_dir>/tutti.db`.
    pub path: Option<PathBuf>,
}

/// `[keys]`: where the command-signing key lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The ed25519 seed file (64 hex characters, mode 0600), created at first start if
    /// absent; absent means `<data_dir>/signing.key`. Back it up: agents pin its public key.
    pub signing_key_file: Option<PathBuf>,
}

/// `[broker_identity]`: every agent connects to the broker as its own NATS user, with
/// permissions for its own subjects only (decentralized auth: operator, account and user
/// JWTs). The server keeps the keys, issues each enrolling agent a user JWT for the public
/// key the agent generated, connects as its own user, and pushes revocations to the broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerIdentityConfig {
    /// The directory of the operator and account keys (`tutti_bus::auth::BrokerAuth`,
    /// created on first use, mode 0600). Absent: agents get `enrollment.nats_auth`, the
    /// same credentials for every agent, and the broker cannot tell them apart.
    pub keys_dir: Option<PathBuf>,
}

/// `[log]`: what `tutti server` writes to standard error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` (one readable line per event) or `json` (one JSON object per line, for a
    /// log shipper).
    pub format: LogFormat,
    /// A filter in tracing's `EnvFilter` syntax, e.g. `info` or `tutti_server=debug,info`;
    /// `TUTTI_LOG` overrides it.
    pub level: String,
}

/// The log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
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
    /// A PEM file of the CA(s) agents must trust for the broker's TLS certificate; its
    /// contents travel in the enrollment answer. Absent: the server's own `bus.tls.ca_file`,
    /// if any (else agents use their system roots).
    pub nats_ca_file: Option<PathBuf>,
    /// Tell agents to refuse a broker connection without TLS.
    pub nats_require_tls: bool,
    /// A directory of agent binaries named `tutti-agent-<os>-<arch>` (`linux-x86_64`, ...)
    /// that the install script (`GET /install.sh`) downloads from this server. Absent: no
    /// install script is served.
    pub agent_binary_dir: Option<PathBuf>,
}

/// HTTP request limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Largest job manifest in bytes; larger ones get 413.
    pub manifest_limit_bytes: usize,
    /// PEM certificate chain for HTTPS. With `tls_key_file`, the server speaks HTTPS only
    /// (and marks cookies `Secure`); SIGHUP re-reads both files. Absent: plain HTTP, for
    /// loopback or behind a reverse proxy that terminates TLS.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Addresses (`10.0.0.5`) or networks (`10.0.0.0/8`) of reverse proxies whose
    /// `X-Forwarded-For` header is believed: the client address used for sign-in
    /// throttling and the audit log is then the last address in that header that is not a
    /// trusted proxy. Empty: the peer address of the TCP connection.
    pub trusted_proxies: Vec<String>,
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
            public_url: String::new(),
            offline_after_secs: 90,
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            log: LogConfig::default(),
            broker_identity: BrokerIdentityConfig::default(),
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
            tls_cert_file: None,
            tls_key_file: None,
            trusted_proxies: Vec::new(),
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
    /// Mark the session cookie `Secure`. Always on when the server speaks HTTPS itself or
    /// `public_url` is `https://`; turn it on by hand behind a TLS-terminating proxy that
    /// is reached under another name.
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
    /// Parses TOML text and checks it; errors name the key and its line.
    pub fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        ConfigFile::parse(None, text, &EnvOverrides::default()).map(|file| file.config)
    }

    /// Reads, parses and checks a config file; errors name the file, the line and the key.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        ConfigFile::load(path, &EnvOverrides::default()).map(|file| file.config)
    }

    /// Checks the values that parse but cannot work, naming the key of the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        check::validate(self)
    }

    /// The SQLite database path.
    pub fn database_path(&self) -> PathBuf {
        match &self.database.path {
            Some(path) => path.clone(),
            None => self.data_dir.join(DATABASE_FILE),
        }
    }

    /// The command-signing key file.
    pub fn signing_key_path(&self) -> PathBuf {
        match &self.keys.signing_key_file {
            Some(path) => path.clone(),
            None => self.data_dir.join(crate::keys::KEY_FILE),
        }
    }

    /// Whether the server itself speaks HTTPS.
    pub fn serves_https(&self) -> bool {
        self.http.tls_cert_file.is_some()
    }

    /// Whether session cookies carry `Secure`: asked for, or implied by HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.auth.secure_cookies || self.serves_https() || self.public_url.starts_with("https://")
    }

    /// The CA file agents are told to trust for the broker, if any.
    pub fn agent_nats_ca_file(&self) -> Option<&Path> {
        self.enrollment
            .nats_ca_file
            .as_deref()
            .or_else(|| self.bus.tls.as_ref()?.ca_file.as_deref())
    }

    /// The parsed trusted proxies (validated by [`ServerConfig::validate`]).
    pub fn trusted_proxies(&self) -> Vec<IpNet> {
        self.http
            .trusted_proxies
            .iter()
            .filter_map(|text| IpNet::parse(text).ok())
            .collect()
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

/// An address or a network in CIDR form, as `trusted_proxies` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix_len: u8,
}

impl IpNet {
    /// `10.0.0.5` (one address) or `10.0.0.0/8`.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max_len = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max_len,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max_len)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
        };
        Ok(IpNet {
            address,
            prefix_len,
        })
    }

    /// Whether `address` lies in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)) << 96, self.prefix_len)
                    == masked(u128::from(u32::from(ip)) << 96, self.prefix_len)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix_len) == masked(u128::from(ip), self.prefix_len)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, prefix_len: u8) -> u128 {
    match prefix_len {
        0 => 0,
        len => bits & (u128::MAX << (128 - u32::from(len))),
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
        let err = ServerConfig::parse("listen = \"127.0.0.1:1\"\n[http]\nbody_limit = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("3: http.body_limit: "), "{err}");
    }

    #[test]
    fn the_api_listens_on_localhost_by_default() {
        assert!(ServerConfig::default().listen.ip().is_loopback());
    }

    #[test]
    fn trusted_proxy_networks_contain_their_addresses() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one = IpNet::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("proxy").is_err());
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn https_or_an_https_public_url_makes_cookies_secure() {
        let mut config = ServerConfig::default();
        assert!(!config.secure_cookies());
        config.public_url = "https://tutti.example.com".into();
        assert!(config.secure_cookies());
        config.public_url.clear();
        config.http.tls_cert_file = Some("cert.pem".into());
        assert!(config.secure_cookies());
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
