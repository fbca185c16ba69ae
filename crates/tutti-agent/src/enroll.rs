//! Enrollment: trade a one-time token for an identity at the server's
//! `POST /api/v1/enroll`, and store it in the state directory.
//!
//! The server answers with the agent's id, broker URLs and credentials, and the key that
//! signs commands; the agent pins that key. Whoever answers this request decides which
//! key the machine obeys from then on, so the answer must come from the real server:
//! plain `http://` is refused unless the server is on loopback (or `--insecure` says the
//! network is trusted), `--ca` pins the CA of the server's HTTPS certificate, and
//! `--server-key-id` pins the signing key itself. Every check runs before anything is
//! written. Errors say what to check next (URL, token, certificate, key id).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tutti_proto::enroll::{EnrollRequest, EnrollResponse};
use tutti_proto::sign::{key_id_for, verifying_key_from_base64};
use tutti_proto::{AgentId, KeyId};

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
    /// Trust only the CA certificates in this PEM file for the server's HTTPS certificate
    /// (instead of the system roots).
    pub ca_file: Option<PathBuf>,
    /// The command-signing key id the server must have; any other aborts enrollment.
    pub server_key_id: Option<KeyId>,
    /// Allow plain `http://` to a server that is not on loopback.
    pub insecure: bool,
}

/// Enrolls with the server at `server_url` and saves the identity into `state_dir`.
pub async fn enroll(
    server_url: &str,
    token: &str,
    state_dir: &Path,
    options: EnrollOptions,
) -> anyhow::Result<Identity> {
    check_transport(server_url, options.insecure)?;
    let client = http_client(options.ca_file.as_deref())?;
    // The agent's own broker key: only its public half travels, so the server can issue a
    // user JWT for it while the seed never leaves this machine.
    let broker_key = nkeys::KeyPair::new_user();
    let hostname = options.hostname.unwrap_or_else(local_hostname);
    let request = EnrollRequest {
        token: token.to_string(),
        hostname,
        requested_id: options.requested_id,
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        expected_server_key_id: options.server_key_id,
        nats_public_key: Some(broker_key.public_key()),
    };
    let url = format!("{}{ENROLL_PATH}", server_url.trim_end_matches('/'));
    let response = client.post(&url).json(&request).send().await.map_err(|err| {
        anyhow::anyhow!("cannot reach the tutti server at {server_url}: {} (check the URL, that the server runs, and --ca if it uses a private CA)", tutti_bus::error::with_causes(&err))
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("enrollment refused by {url} ({status}): {}", body.trim());
    }
    let answer: EnrollResponse = response.json().await.map_err(|err| {
        anyhow::anyhow!("the server's enrollment answer is not understood: {err}")
    })?;
    check_signing_key(&answer, options.server_key_id)?;
    let mut identity = identity_from(answer.clone());
    if let Some(user_jwt) = &answer.nats_user_jwt {
        let creds = tutti_bus::auth::creds_for_key_pair(user_jwt, &broker_key).map_err(|err| {
            anyhow::anyhow!("cannot use the broker identity the server issued: {err}")
        })?;
        identity.nats_auth = tutti_bus::Auth::Creds { creds };
    }
    identity::save(state_dir, &identity)?;
    Ok(identity)
}

/// Refuses plain HTTP to anything but loopback: whoever can answer the request hands this
/// machine the key it will obey.
fn check_transport(server_url: &str, insecure: bool) -> anyhow::Result<()> {
    let Some(rest) = server_url.strip_prefix("http://") else {
        if server_url.starts_with("https://") {
            return Ok(());
        }
        anyhow::bail!("{server_url:?} is not an http:// or https:// URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || insecure {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to enroll over plain http:// with {host}: anyone on the network path could answer with a signing key of their own and then run code on this machine. Use the server's https:// URL (with --ca FILE for a private CA), or pass --insecure on a network you trust"
    )
}

fn http_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca_file) = ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|err| anyhow::anyhow!("cannot read --ca {}: {err}", ca_file.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
            anyhow::anyhow!(
                "--ca {} is not a PEM certificate bundle: {err}",
                ca_file.display()
            )
        })?;
        if certificates.is_empty() {
            anyhow::bail!("--ca {} holds no certificate", ca_file.display());
        }
        builder = builder.tls_built_in_root_certs(false);
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder.build()?)
}

/// The answer's key must be a valid key whose id is the one it claims, and the one
/// `--server-key-id` pinned, if any.
fn check_signing_key(answer: &EnrollResponse, pinned: Option<KeyId>) -> anyhow::Result<()> {
    let key = verifying_key_from_base64(&answer.server_public_key)
        .map_err(|err| anyhow::anyhow!("the server's signing key is not valid: {err}"))?;
    let actual = key_id_for(&key);
    if actual != answer.server_key_id {
        anyhow::bail!(
            "the server's answer is inconsistent: key id {} does not match its public key ({actual}); nothing stored",
            answer.server_key_id
        );
    }
    if let Some(pinned) = pinned
        && pinned != actual
    {
        anyhow::bail!(
            "the server's command-signing key is {actual}, but --server-key-id says {pinned}: refusing to trust it (nothing stored). Check that the URL names the right server"
        );
    }
    Ok(())
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
        nats_ca_pem: answer.nats_ca_pem,
        nats_require_tls: answer.nats_require_tls,
    }
}

fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "agent".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_unless_loopback_or_insecure() {
        for allowed in [
            "https://tutti.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "http://[::1]:8080",
        ] {
            assert!(check_transport(allowed, false).is_ok(), "{allowed}");
        }
        let err = check_transport("http://tutti.example.com", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--insecure") && err.contains("https://"),
            "{err}"
        );
        assert!(check_transport("http://10.0.0.5:8080", false).is_err());
        assert!(check_transport("http://10.0.0.5:8080", true).is_ok());
        assert!(check_transport("ftp://x", true).is_err());
    }
}
