//! How to reach the broker: URLs, credentials, TLS, timeouts.
//!
//! This is the parsed, validated form read from a TOML or JSON config section; building a
//! live connection from it is [`crate::connect`]'s job. Secrets never appear in `Debug`
//! output: [`Auth`] has a hand-written redacting implementation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection settings for the NATS broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Broker URLs; the client picks one and fails over to the others.
    pub urls: Vec<String>,
    /// Credentials presented to the broker.
    pub auth: Auth,
    /// TLS settings; `None` means plain TCP unless a URL says `tls://`.
    pub tls: Option<TlsConfig>,
    /// Connection name shown by the broker (`/connz`), e.g. `tutti-agent web-01`.
    pub name: String,
    /// Bound on every JetStream, KV and object-store request, in milliseconds. A half-dead
    /// TCP connection otherwise hangs an await forever.
    pub request_timeout_ms: u64,
    /// Bound on establishing one TCP + handshake attempt, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Ceiling of the reconnect backoff, in milliseconds. The delay grows exponentially
    /// from 250 ms up to this and is fully jittered, so a fleet does not stampede a broker
    /// that just restarted.
    pub reconnect_max_delay_ms: u64,
    /// Return from `connect` at once and keep trying in the background (agents boot with
    /// the broker down). When false, `connect` fails if the broker is unreachable.
    pub connect_in_background: bool,
    /// The prefix of this client's reply subjects (`_INBOX` when absent). Agents use
    /// `_INBOX.<id>`, so the broker can let each one subscribe to its own replies only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox_prefix: Option<String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            urls: vec!["nats://127.0.0.1:4222".to_string()],
            auth: Auth::None,
            tls: None,
            name: "tutti".to_string(),
            request_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            reconnect_max_delay_ms: 30_000,
            connect_in_background: false,
            inbox_prefix: None,
        }
    }
}

impl BusConfig {
    /// A config for one broker URL with every other field at its default.
    pub fn for_url(url: impl Into<String>) -> BusConfig {
        BusConfig {
            urls: vec![url.into()],
            ..BusConfig::default()
        }
    }

    /// The request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Credentials presented to the broker: the protocol's one definition, shared with
/// enrollment (redacting `Debug` included).
pub use tutti_proto::enroll::NatsAuth as Auth;

/// TLS settings for the broker connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Require TLS even if the URL does not say `tls://`.
    pub required: bool,
    /// A PEM file of CA certificates to trust (instead of the system roots).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let configs = [
            Auth::Token {
                token: "s3cret-token".into(),
            },
            Auth::UserPassword {
                user: "ops".into(),
                password: "s3cret-pass".into(),
            },
            Auth::Nkey {
                seed: "SUAs3cretseed".into(),
            },
        ];
        for auth in configs {
            let config = BusConfig {
                auth,
                ..BusConfig::default()
            };
            let debug = format!("{config:?}");
            assert!(!debug.contains("s3cret"), "secret leaked: {debug}");
            assert!(debug.contains("<redacted>"), "{debug}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = serde_json::from_str::<BusConfig>(r#"{"urls": [], "request_timout_ms": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("request_timout_ms"), "{err}");
    }

    #[test]
    fn auth_methods_parse_from_tagged_form() {
        let config: BusConfig = serde_json::from_str(
            r#"{"auth": {"method": "user_password", "user": "a", "password": "b"}}"#,
        )
        .unwrap();
        assert_eq!(
            config.auth,
            Auth::UserPassword {
                user: "a".into(),
                password: "b".into()
            }
        );
        assert_eq!(config.urls, BusConfig::default().urls);
    }
}
