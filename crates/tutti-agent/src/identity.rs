//! The agent's identity: who it is, where its broker is, how it authenticates, and which
//! server key it obeys. Written once by enrollment into `identity.json` (mode 0600) in the
//! state directory, which is itself 0700.
//!
//! The server's public key is pinned here at enrollment; a command signed by any other key
//! is refused, whatever the broker delivers.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_bus::Auth;
use tutti_proto::sign::{key_id_for, verifying_key_from_base64, verifying_key_to_base64};
use tutti_proto::{AgentId, GroupName, KeyId};

/// The file name of the identity inside the state directory.
pub const IDENTITY_FILE: &str = "identity.json";

/// The broker's CA bundle from enrollment, beside the identity (async-nats reads roots
/// from a file).
pub const BROKER_CA_FILE: &str = "broker-ca.pem";

/// Everything enrollment hands an agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// This agent's id.
    pub agent_id: AgentId,
    /// Broker URLs.
    pub nats_urls: Vec<String>,
    /// Broker credentials.
    #[serde(default)]
    pub nats_auth: Auth,
    /// The server's command-signing public key, base64.
    pub server_public_key: String,
    /// The key id commands must carry.
    pub server_key_id: KeyId,
    /// Groups assigned at enrollment; the groups KV bucket is authoritative afterwards.
    #[serde(default)]
    pub initial_groups: Vec<GroupName>,
    /// The commands-stream sequence at enrollment: the agent starts after it, so a new
    /// machine does not replay a week of broadcasts. `None`: the stream's last sequence at
    /// the first connection.
    #[serde(default)]
    pub start_after_seq: Option<u64>,
    /// When enrollment happened.
    pub enrolled_at: Timestamp,
    /// PEM of the CA that signs the broker's certificate, when enrollment handed one out
    /// (also written to [`BROKER_CA_FILE`]).
    #[serde(default)]
    pub nats_ca_pem: Option<String>,
    /// Never connect to the broker without TLS.
    #[serde(default)]
    pub nats_require_tls: bool,
}

/// Why the identity could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No identity yet.
    #[error(
        "agent is not enrolled: {path} does not exist (run `tutti-agent enroll --server URL --token TOKEN`)"
    )]
    NotEnrolled { path: PathBuf },
    /// The file exists but cannot be read or parsed.
    #[error("cannot read identity {path}: {detail}")]
    Unreadable { path: PathBuf, detail: String },
    /// The pinned key is not a valid ed25519 public key.
    #[error("identity {path} holds an invalid server public key: {detail}")]
    BadKey { path: PathBuf, detail: String },
    /// The state directory or file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Identity {
    /// The pinned server key.
    pub fn server_key(&self) -> Result<VerifyingKey, String> {
        verifying_key_from_base64(&self.server_public_key).map_err(|err| err.to_string())
    }

    /// Builds an identity for a freshly created key (tests and enrollment).
    pub fn new(agent_id: AgentId, nats_urls: Vec<String>, server_key: &VerifyingKey) -> Identity {
        Identity {
            agent_id,
            nats_urls,
            nats_auth: Auth::None,
            server_public_key: verifying_key_to_base64(server_key),
            server_key_id: key_id_for(server_key),
            initial_groups: Vec::new(),
            start_after_seq: None,
            enrolled_at: Timestamp::now(),
            nats_ca_pem: None,
            nats_require_tls: false,
        }
    }

    /// The broker TLS settings: the CA file from enrollment and whether TLS is required,
    /// with the local `[tls]` section winning where it says more.
    pub fn broker_tls(
        &self,
        state_dir: &Path,
        local: &crate::config::BrokerTlsConfig,
    ) -> Option<tutti_bus::TlsConfig> {
        let enrolled_ca = self
            .nats_ca_pem
            .as_ref()
            .map(|_| state_dir.join(BROKER_CA_FILE));
        let tls = tutti_bus::TlsConfig {
            required: self.nats_require_tls,
            ca_file: local.ca_file.clone().or(enrolled_ca),
            client_cert: local.client_cert.clone(),
            client_key: local.client_key.clone(),
        };
        (tls != tutti_bus::TlsConfig::default()).then_some(tls)
    }
}

/// Creates the state directory with mode 0700 if it does not exist, and tightens it if it
/// does.
pub fn ensure_state_dir(state_dir: &Path) -> Result<(), IdentityError> {
    let write_err = |source| IdentityError::Write {
        path: state_dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(write_err)?;
    fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700)).map_err(write_err)
}

/// Loads and checks the identity from the state directory.
pub fn load(state_dir: &Path) -> Result<Identity, IdentityError> {
    let path = state_dir.join(IDENTITY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(IdentityError::NotEnrolled { path });
        }
        Err(err) => {
            return Err(IdentityError::Unreadable {
                path,
                detail: err.to_string(),
            });
        }
    };
    let identity: Identity =
        serde_json::from_str(&text).map_err(|err| IdentityError::Unreadable {
            path: path.clone(),
            detail: err.to_string(),
        })?;
    identity
        .server_key()
        .map_err(|detail| IdentityError::BadKey { path, detail })?;
    Ok(identity)
}

/// Writes the identity atomically (temp file + rename) with mode 0600, and the broker's CA
/// file beside it when enrollment handed one out.
pub fn save(state_dir: &Path, identity: &Identity) -> Result<(), IdentityError> {
    ensure_state_dir(state_dir)?;
    if let Some(pem) = &identity.nats_ca_pem {
        write_private(state_dir, BROKER_CA_FILE, pem.as_bytes())?;
    }
    let body = serde_json::to_vec_pretty(identity).map_err(|err| IdentityError::Write {
        path: state_dir.join(IDENTITY_FILE),
        source: err.into(),
    })?;
    write_private(state_dir, IDENTITY_FILE, &body)
}

pub(crate) fn write_private(
    state_dir: &Path,
    name: &str,
    body: &[u8],
) -> Result<(), IdentityError> {
    let path = state_dir.join(name);
    let temp = state_dir.join(format!("{name}.tmp"));
    let write_err = |source| IdentityError::Write {
        path: path.clone(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(write_err)?;
    file.write_all(body).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    fs::rename(&temp, &path).map_err(write_err)
}
