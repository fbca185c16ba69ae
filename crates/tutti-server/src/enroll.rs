//! Enrollment (`POST /api/v1/enroll`): an agent trades a token for its id, the broker's
//! URLs and credentials, and the command-signing key to pin.
//!
//! `start_after_seq` is the commands stream's last sequence, read *before* the agent is
//! stored. Read after, a run created in between could target the new agent with a command
//! below its start point, and that target would stay queued for ever; read before, the
//! worst case is a broadcast the agent runs without being a target, which the projector
//! records as an anomaly.
//!
//! A token's groups are written to the store in the enrolling transaction, then to the
//! agent's `tutti_groups` entry, and returned in the response (the agent's first command
//! filters). Store first: an invalid token must never touch the bucket agents act on.

use jiff::Timestamp;
use tutti_proto::catalog::COMMANDS_STREAM;
use tutti_proto::enroll::{EnrollRequest, EnrollResponse};
use tutti_proto::{AgentId, GroupName};
use tutti_store::{NewAgent, StoreError};

use crate::app::App;
use crate::error::{Error, Result};
use crate::tokens;

/// Enrolls the agent described by `request`.
pub(crate) async fn enroll(app: &App, request: EnrollRequest) -> Result<EnrollResponse> {
    if let Some(expected) = request.expected_server_key_id
        && expected != app.keys.current().key_id()
    {
        return Err(Error::Conflict(format!(
            "this server signs commands with key {}, not {expected}: the agent was told to trust another server (check --server-key-id)",
            app.keys.current().key_id()
        )));
    }
    let nats_ca_pem = agent_nats_ca(app)?;
    let agent_id = match request.requested_id.clone() {
        Some(agent_id) => agent_id,
        None => agent_id_from_hostname(&request.hostname)?,
    };
    let broker = broker_identity(app, &agent_id, request.nats_public_key.as_deref())?;
    let start_after_seq = commands_last_sequence(app).await?;
    let agent = NewAgent {
        agent_id: agent_id.clone(),
        hostname: request.hostname.clone(),
        os: request.os.clone(),
        arch: request.arch.clone(),
        version: request.version.clone(),
        enrolled_at: Timestamp::now(),
        broker_public_key: broker.as_ref().map(|(public_key, _)| public_key.clone()),
    };
    let groups = match app
        .store
        .enroll_agent(&tokens::hash(&request.token), agent)
        .await
    {
        Ok(groups) => groups,
        Err(StoreError::NotFound(_)) => {
            return Err(Error::Unauthorized(
                "the enrollment token is invalid, expired, revoked or used up".into(),
            ));
        }
        Err(StoreError::Conflict(what)) if what.contains("broker key") => {
            return Err(Error::Conflict(what));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(Error::Conflict(format!(
                "agent {agent_id} is already enrolled; delete it first or request another id"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    write_groups(app, &agent_id, &groups).await;
    app.metrics
        .enrollments
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(agent_id = %agent_id, hostname = %request.hostname, ?groups, start_after_seq, "Enrolled an agent.");
    let (nats_auth, nats_user_jwt) = match broker {
        Some((_, user_jwt)) => (tutti_proto::enroll::NatsAuth::None, Some(user_jwt)),
        None => (app.config.enrollment.nats_auth.clone(), None),
    };
    Ok(EnrollResponse {
        agent_id,
        nats_urls: app.config.agent_nats_urls(),
        nats_auth,
        server_public_key: app.keys.current().public_base64(),
        server_key_id: app.keys.current().key_id(),
        groups,
        start_after_seq: Some(start_after_seq),
        nats_ca_pem,
        nats_require_tls: app.config.enrollment.nats_require_tls,
        nats_user_jwt,
    })
}

/// With per-agent broker identities, the agent's public key and the user JWT issued for
/// it, checked and signed before anything is stored; `None` without them.
fn broker_identity(
    app: &App,
    agent_id: &AgentId,
    public_key: Option<&str>,
) -> Result<Option<(String, String)>> {
    let Some(identity) = &app.broker_identity else {
        return Ok(None);
    };
    let public_key = public_key.ok_or_else(|| {
        Error::bad_request(
            "this server gives every agent its own broker identity, and this agent sent no nats_public_key: upgrade tutti-agent",
        )
    })?;
    crate::broker_identity::check_agent_key(public_key).map_err(Error::bad_request)?;
    let user_jwt = identity
        .agent_jwt(agent_id, public_key)
        .map_err(|err| Error::internal("issue a broker identity", err))?;
    Ok(Some((public_key.to_string(), user_jwt)))
}

/// The broker CA handed to agents, read at each enrollment so a renewed CA file needs no
/// restart. A file that went missing since start-up is the operator's to fix, and an agent
/// enrolled without it could not connect, so enrollment fails.
fn agent_nats_ca(app: &App) -> Result<Option<String>> {
    let Some(path) = app.config.agent_nats_ca_file() else {
        return Ok(None);
    };
    std::fs::read_to_string(path).map(Some).map_err(|err| {
        tracing::error!(path = %path.display(), error = %err, "Cannot read the broker CA file handed to enrolling agents.");
        Error::Unavailable("the server cannot read the broker's CA file; tell the operator".into())
    })
}

/// An agent id from a hostname: the first label, lowercased, with every other character
/// than `[a-z0-9-]` replaced by `-`, runs of `-` collapsed, trimmed to 64 characters.
pub(crate) fn agent_id_from_hostname(hostname: &str) -> Result<AgentId> {
    let first_label = hostname.trim().split('.').next().unwrap_or_default();
    let mut id = String::new();
    for character in first_label.chars().map(|c| c.to_ascii_lowercase()) {
        let character = if character.is_ascii_lowercase() || character.is_ascii_digit() {
            character
        } else {
            '-'
        };
        if !(character == '-' && id.ends_with('-')) {
            id.push(character);
        }
    }
    let id: String = id.trim_matches('-').chars().take(64).collect();
    AgentId::parse(id.trim_end_matches('-')).map_err(|_| {
        Error::bad_request(format!(
            "cannot derive an agent id from hostname {hostname:?}; send requested_id"
        ))
    })
}

/// Writes the new agent's membership to `tutti_groups`. A failure is not the client's: the
/// agent is enrolled (its token use is spent) and starts with the groups from the response,
/// so it is logged for the operator, who repairs it with `PUT /agents/{id}/groups`.
async fn write_groups(app: &App, agent_id: &AgentId, groups: &[GroupName]) {
    if let Err(err) = app.kv.put_groups(agent_id, groups).await {
        tracing::warn!(agent_id = %agent_id, ?groups, error = %err, "Could not write an enrolled agent's groups to the groups bucket; set them again with PUT /api/v1/agents/{{id}}/groups.");
    }
}

async fn commands_last_sequence(app: &App) -> Result<u64> {
    let timeout = app.bus.request_timeout();
    let js = app.bus.jetstream();
    let mut stream =
        tutti_bus::bounded("get stream", timeout, js.get_stream(COMMANDS_STREAM)).await?;
    let info = tokio::time::timeout(timeout, stream.info())
        .await
        .map_err(|_| Error::Unavailable("the broker did not answer in time".into()))?
        .map_err(|err| Error::Unavailable(format!("cannot read the commands stream: {err}")))?;
    Ok(info.state.last_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_become_normalised_agent_ids() {
        let cases = [
            ("Web-01.example.net", "web-01"),
            ("  LAPTOP_Anna ", "laptop-anna"),
            ("db..x", "db"),
            ("--odd--name--", "odd-name"),
            ("Ünïcode-box", "n-code-box"),
        ];
        for (hostname, expected) in cases {
            assert_eq!(
                agent_id_from_hostname(hostname).unwrap().as_str(),
                expected,
                "{hostname}"
            );
        }
        assert!(agent_id_from_hostname("...").is_err());
        let long = "a".repeat(100);
        assert_eq!(agent_id_from_hostname(&long).unwrap().as_str().len(), 64);
    }
}
