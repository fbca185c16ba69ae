//! Per-agent broker identity: with `[broker_identity] keys_dir` set, every agent connects
//! to the broker as its own NATS user, and the broker itself enforces that an agent
//! touches only its own subjects.
//!
//! At enrollment the agent sends the public half of a key pair it generated; the seed never
//! leaves the machine. The server signs a user JWT for that key with the permissions of
//! `tutti_bus::agent_permissions` (publish under `tutti.agent.<id>.>`, its own consumer,
//! replies to `_INBOX.<id>`, ...) and records the key (`broker_identities` in the store).
//! Deleting an agent revokes its keys: the tutti account JWT is rebuilt with every revoked
//! key and pushed to the broker through the system account, which closes the agent's open
//! connection and refuses the next one. The server connects as its own user, minted at
//! each start with the server's role (`tutti_bus::server_permissions`: everything the
//! control plane needs, nothing that speaks as an agent), and pushes the current account
//! JWT at start too, so a broker that missed a revocation (restarted from an older config)
//! learns it again.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use tutti_bus::auth::{BrokerAuth, push_account_jwt};
use tutti_bus::{Auth, BusConfig, connect, server_permissions};
use tutti_proto::AgentId;
use tutti_store::Store;

use crate::actor::Actor;
use crate::app::App;
use crate::config::ServerConfig;
use crate::error::{Error, Result};

/// The server's broker keys and how to reach the broker as the system account.
#[derive(Debug)]
pub struct BrokerIdentity {
    auth: BrokerAuth,
    bus: BusConfig,
}

impl BrokerIdentity {
    /// Loads (or creates) the keys when `[broker_identity] keys_dir` is set.
    pub fn open(config: &ServerConfig) -> anyhow::Result<Option<BrokerIdentity>> {
        let Some(dir) = &config.broker_identity.keys_dir else {
            return Ok(None);
        };
        let auth = BrokerAuth::load_or_create(dir)
            .with_context(|| format!("cannot load the broker keys in {}", dir.display()))?;
        Ok(Some(BrokerIdentity {
            auth,
            bus: config.bus.clone(),
        }))
    }

    /// The server's own connection: a user of the tutti account minted for this start, with
    /// the server's role (`tutti_bus::server_permissions`), replies under its own inbox
    /// prefix, which that role lets it subscribe to.
    pub fn server_bus_config(&self) -> BusConfig {
        let creds = self.auth.mint_user_creds(
            "tutti-server",
            &server_permissions::server_permissions(),
            &server_permissions::server_limits(),
        );
        BusConfig {
            auth: Auth::Creds { creds },
            inbox_prefix: Some(tutti_proto::subjects::server_inbox_prefix()),
            ..self.bus.clone()
        }
    }

    /// A user JWT for agent `agent_id` and the public key it generated.
    pub fn agent_jwt(&self, agent_id: &AgentId, public_key: &str) -> anyhow::Result<String> {
        let name = format!("agent:{agent_id}");
        let permissions = tutti_bus::agent_permissions::agent_permissions(agent_id);
        let limits = tutti_bus::agent_permissions::agent_limits();
        self.auth
            .user_jwt(public_key, &name, &permissions, &limits)
            .map_err(|err| anyhow::anyhow!("{err}"))
    }

    /// The broker settings (nats.conf) that trust these keys, with the revocations in
    /// `store` (none without a database yet).
    pub async fn nats_server_config(
        &self,
        store: Option<&Store>,
        resolver_dir: &std::path::Path,
    ) -> anyhow::Result<String> {
        let revocations = match store {
            Some(store) => revocations(store).await?,
            None => Vec::new(),
        };
        Ok(self.auth.nats_server_config(resolver_dir, &revocations))
    }

    /// Rebuilds the tutti account JWT with every revoked key in the store and pushes it to
    /// the broker; returns once the broker has applied it.
    pub async fn push_revocations(&self, store: &Store, timeout: Duration) -> anyhow::Result<()> {
        let revocations = revocations(store).await?;
        let account_jwt = self.auth.account_jwt(&revocations);
        let system = BusConfig {
            name: "tutti-server (claim updates)".into(),
            auth: Auth::Creds {
                creds: self.auth.mint_system_user_creds(),
            },
            ..self.bus.clone()
        };
        let bus = connect(&system)
            .await
            .context("cannot connect to the broker as the system account")?;
        let pushed = push_account_jwt(bus.client(), &account_jwt, timeout).await;
        let _ = bus.client().drain().await;
        pushed.context("the broker did not apply the account's revocations")?;
        tracing::info!(
            n_revoked = revocations.len(),
            "The broker has the account's current revocations."
        );
        Ok(())
    }
}

/// Revokes the broker keys of an agent about to be deleted: recorded in the store, then
/// pushed to the broker, which closes the agent's open connection. The push carries every
/// revoked key and runs whenever the agent has any, so a retry after a failed push (the
/// caller deletes nothing then) pushes again. Audited per key revoked now.
pub async fn revoke(app: &App, actor: &Actor, agent_id: &AgentId) -> Result<()> {
    let Some(identity) = &app.broker_identity else {
        return Ok(());
    };
    let revoked = app
        .store
        .revoke_broker_identities(agent_id, Timestamp::now())
        .await?;
    if app.store.broker_identities_of(agent_id).await?.is_empty() {
        return Ok(());
    }
    identity
        .push_revocations(&app.store, app.bus.request_timeout())
        .await
        .map_err(|err| {
            Error::Unavailable(format!(
                "the broker did not take the agent's revocation ({err:#}); nothing was deleted, try again"
            ))
        })?;
    for public_key in revoked {
        let summary = serde_json::json!({ "public_key": public_key });
        app.auditor
            .succeeded(
                actor,
                "agent.broker_identity.revoke",
                format!("agent/{agent_id}"),
                summary,
            )
            .await;
    }
    Ok(())
}

/// Validates a public key an agent sent: a NATS user key (`U...`, checksummed).
pub fn check_agent_key(public_key: &str) -> Result<(), String> {
    match nkeys::KeyPair::from_public_key(public_key) {
        Ok(_) if public_key.starts_with('U') => Ok(()),
        _ => Err(format!(
            "{public_key:?} is not a NATS user public key (U..., as `nkeys` encodes it)"
        )),
    }
}

async fn revocations(store: &Store) -> anyhow::Result<Vec<(String, u64)>> {
    let revoked = store
        .revoked_broker_identities()
        .await
        .context("cannot read the revoked broker keys")?;
    Ok(revoked
        .into_iter()
        .map(|identity| {
            let at = identity.revoked_at.unwrap_or_else(Timestamp::now);
            (
                identity.public_key,
                u64::try_from(at.as_second()).unwrap_or(0),
            )
        })
        .collect())
}
