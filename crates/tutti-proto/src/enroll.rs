//! Enrollment over HTTP: what an agent sends to `POST /api/v1/enroll` with a one-time token,
//! and what the server hands back (its identity, where the broker is, how to authenticate,
//! and the command-signing key to pin).
//!
//! This is not a bus message but it is a protocol between two of our programs, so it lives
//! here beside the others and follows the same evolution rules.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, GroupName, KeyId};

/// The agent's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The enrollment token (shown once when an operator created it).
    pub token: String,
    /// The machine's hostname, used to derive the agent id when none is requested.
    pub hostname: String,
    /// An id the agent asks for (validated and normalised like every agent id).
    #[serde(default)]
    pub requested_id: Option<AgentId>,
    /// Operating system name, e.g. `Debian GNU/Linux`.
    #[serde(default)]
    pub os: String,
    /// CPU architecture, e.g. `x86_64`.
    #[serde(default)]
    pub arch: String,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// The command-signing key id the agent was told to trust (`--server-key-id`). A
    /// server with another key refuses before it stores anything or spends the token.
    #[serde(default)]
    pub expected_server_key_id: Option<KeyId>,
    /// The public half (`U...`) of the NATS user key the agent generated for itself; the
    /// seed never leaves the machine. A server with per-agent broker identities issues a
    /// user JWT for it.
    #[serde(default)]
    pub nats_public_key: Option<String>,
}

/// Broker credentials, tagged by `"method"`: what enrollment hands an agent, and what
/// `tutti_bus::BusConfig` connects with (it re-exports this type as `tutti_bus::Auth`, so
/// there is one definition and no conversion between them).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum NatsAuth {
    /// No credentials (a development broker).
    #[default]
    None,
    /// A shared token.
    Token {
        /// The token.
        token: String,
    },
    /// User and password.
    UserPassword {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// An NKey seed (`SU...`).
    Nkey {
        /// The seed.
        seed: String,
    },
    /// A JWT + seed in `.creds` file form, carried inline (as handed out at enrollment).
    Creds {
        /// The file's contents.
        creds: String,
    },
    /// A `.creds` file on disk (decentralised auth configured by an operator).
    CredsFile {
        /// Path to the `.creds` file.
        #[cfg_attr(feature = "schema", schema(value_type = String))]
        path: std::path::PathBuf,
    },
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::Token { .. } => f.write_str("Token { token: <redacted> }"),
            NatsAuth::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: <redacted> }}")
            }
            NatsAuth::Nkey { .. } => f.write_str("Nkey { seed: <redacted> }"),
            NatsAuth::Creds { .. } => f.write_str("Creds { creds: <redacted> }"),
            NatsAuth::CredsFile { path } => write!(f, "CredsFile {{ path: {path:?} }}"),
        }
    }
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The agent's id from now on.
    pub agent_id: AgentId,
    /// Broker URLs the agent connects to.
    pub nats_urls: Vec<String>,
    /// Broker credentials.
    #[serde(default)]
    pub nats_auth: NatsAuth,
    /// The server's ed25519 command-signing public key, base64.
    pub server_public_key: String,
    /// Its key id; commands must carry it.
    pub server_key_id: KeyId,
    /// Groups assigned by the token.
    #[serde(default)]
    pub groups: Vec<GroupName>,
    /// The commands stream's last sequence at enrollment: the agent starts after it.
    #[serde(default)]
    pub start_after_seq: Option<u64>,
    /// PEM of the CA(s) that sign the broker's TLS certificate, when it is not a public
    /// CA the agent's system trusts.
    #[serde(default)]
    pub nats_ca_pem: Option<String>,
    /// The agent must not connect to the broker without TLS.
    #[serde(default)]
    pub nats_require_tls: bool,
    /// The user JWT for `nats_public_key`, when the server issues per-agent broker
    /// identities: the agent connects with it and its own seed, and `nats_auth` is `none`.
    #[serde(default)]
    pub nats_user_jwt: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let auth = NatsAuth::UserPassword {
            user: "agent".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn requests_decode_with_only_the_required_fields() {
        let request: EnrollRequest =
            serde_json::from_str(r#"{"token": "t", "hostname": "web-01", "future": 1}"#).unwrap();
        assert_eq!(request.requested_id, None);
        assert_eq!(request.hostname, "web-01");
    }
}
