//! Enrollment: trade a one-time token for an identity at the server's
//! `POST /api/v1/enroll`, and store it in the state directory.
//!
//! The server answers with the agent's id, broker URLs and credentials, and the key that
//! signs commands; the agent pins that key. Errors say what to check next (URL, token).

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use tutti_proto::AgentId;
use tutti_proto::enroll::{EnrollRequest, EnrollResponse};

use crate::identity::{self, Identity};

/// The path of the enrollment endpoint under the server URL.
pub const ENROLL_PATH: &str = "/api/v1/enroll";

/// What to send besides the token.
#[derive(Debug, Clone, Default)]
pub struct EnrollOptions {
    /// Ask for this id instead of one derived from the hostname.
    pub requested_id: Option<AgentId>,
    /// Override the hostname sent (tests; simulated agents).
    pub hostname: Option<String>,
}

/// Enrolls with the server at `server_url` and saves the identity into `state_dir`.
pub async fn enroll(
    server_url: &str,
    token: &str,
    state_dir: &Path,
    options: EnrollOptions,
) -> anyhow::Result<Identity> {
    let hostname = options.hostname.unwrap_or_else(local_hostname);
    let request = EnrollRequest {
        token: token.to_string(),
        hostname,
        requested_id: options.requested_id,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let url = format!("{}{ENROLL_PATH}", server_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = client.post(&url).json(&request).send().await.map_err(|err| {
        anyhow::anyhow!("cannot reach the tutti server at {server_url}: {err} (check the URL and that the server runs)")
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("enrollment refused by {url} ({status}): {}", body.trim());
    }
    let answer: EnrollResponse = response.json().await.map_err(|err| {
        anyhow::anyhow!("the server's enrollment answer is not understood: {err}")
    })?;
    let identity = identity_from(answer);
    identity::save(state_dir, &identity)?;
    Ok(identity)
}

fn identity_from(answer: EnrollResponse) -> Identity {
    Identity {
        agent_id: answer.agent_id,
        nats_urls: answer.nats_urls,
        nats_auth: answer.nats_auth,
        server_public_key: answer.server_public_key,
        server_key_id: answer.server_key_id,
        initial_groups: answer.groups,
        start_after_seq: answer.start_after_seq,
        enrolled_at: Timestamp::now(),
    }
}

fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "agent".into())
}
